package antientropy

import (
	"testing"

	"github.com/gossipmesh/gossipmesh/sync/merkle"
)

// messageSize is exact, so AppendMessage grows its buffer once, to it.
func TestMessageSizeIsExact(t *testing.T) {
	msgs := []Message{
		{},
		{Roots: []Root{{Partition: 300, Count: 1 << 40, Hash: merkle.Hash{1}}}, Fin: true},
		{More: true, Records: []Record{{Partition: 7, Key: []byte("k"), State: make([]byte, 200)}, {Partition: 1 << 20, Key: make([]byte, MaxKeyBytes), State: make([]byte, 70_000)}}},
		{Replies: []Reply{{Kind: ReplyRoot, Status: RootDiffer}, {Kind: ReplyHashes, NBits: 256, Bits: make([]byte, 32), Check: 9}, {Kind: ReplyList, NBits: 300, Bits: make([]byte, 38)}}},
		{Items: []Item{
			{Kind: ItemHashes, Fanout: 8, Window: 2, Hashes: make([]byte, 256)},
			{Kind: ItemList, Explicit: true, Node: Node{Partition: 5, Depth: 64, Prefix: 1<<63 + 5}, Fingerprints: make([]uint32, 200)},
			{Kind: ItemStream},
		}},
	}
	for i, m := range msgs {
		b, err := AppendMessage(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		if got := messageSize(m); got != len(b) {
			t.Errorf("message %d: messageSize %d, encoded %d bytes", i, got, len(b))
		}
	}
}
