package antientropy_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	ae "github.com/gossipmesh/gossipmesh/sync/antientropy"
	"github.com/gossipmesh/gossipmesh/sync/merkle"
)

func sampleMessages() []ae.Message {
	return []ae.Message{
		{},
		{Fin: true},
		{Roots: []ae.Root{{Partition: 7, Count: 1 << 20, Hash: merkle.Hash{1, 2, 3}}, {Partition: 1 << 31}}},
		{More: true, Records: []ae.Record{{Partition: 1, Key: []byte("k"), State: []byte("state")}, {Key: []byte{}, State: []byte{}}}},
		{Replies: []ae.Reply{
			{Kind: ae.ReplyRoot, Status: ae.RootDiffer},
			{Kind: ae.ReplyHashes, NBits: 16, Bits: []byte{0x01, 0x80}, Check: 0xbeef},
			{Kind: ae.ReplyHashes, NBits: 2, Bits: []byte{0x02}, Check: 1},
			{Kind: ae.ReplyList, NBits: 3, Bits: []byte{0x05}},
			{Kind: ae.ReplyList, NBits: 0, Bits: []byte{}},
		}},
		{Items: []ae.Item{
			{Kind: ae.ItemHashes, Fanout: 2, Window: 1, Hashes: []byte{0, 1, 2, 3}},
			{Kind: ae.ItemHashes, Explicit: true, Node: ae.Node{Partition: 3, Depth: 12, Prefix: 0xabc}, Fanout: 1, Hashes: []byte{9, 9}},
			{Kind: ae.ItemList, Fingerprints: []uint32{1, 0xffffffff}},
			{Kind: ae.ItemList, Explicit: true, Node: ae.Node{Depth: 64, Prefix: 1<<64 - 1}},
			{Kind: ae.ItemStream},
		}},
	}
}

// normalize maps empty slices to nil so that decoded messages compare equal.
func normalize(m ae.Message) ae.Message {
	for i := range m.Records {
		if len(m.Records[i].Key) == 0 {
			m.Records[i].Key = nil
		}
		if len(m.Records[i].State) == 0 {
			m.Records[i].State = nil
		}
	}
	for i := range m.Replies {
		if len(m.Replies[i].Bits) == 0 {
			m.Replies[i].Bits = nil
		}
	}
	for i := range m.Items {
		if len(m.Items[i].Fingerprints) == 0 {
			m.Items[i].Fingerprints = nil
		}
	}
	return m
}

func TestCodecRoundTrip(t *testing.T) {
	for i, m := range sampleMessages() {
		b, err := ae.AppendMessage(nil, m)
		if err != nil {
			t.Fatalf("%d: AppendMessage: %v", i, err)
		}
		got, err := ae.DecodeMessage(b, 0)
		if err != nil {
			t.Fatalf("%d: DecodeMessage: %v", i, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(m)) {
			t.Fatalf("%d: round trip\n got %+v\nwant %+v", i, got, m)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	good, _ := ae.AppendMessage(nil, sampleMessages()[5])
	for _, tc := range []struct {
		name string
		b    []byte
		max  int
		want error
	}{
		{"empty", nil, 0, ae.ErrTruncated},
		{"cut", good[:len(good)-1], 0, ae.ErrTruncated},
		{"version", append([]byte{2}, good[1:]...), 0, ae.ErrUnknownVersion},
		{"flags", append([]byte{1, 0x80}, good[2:]...), 0, ae.ErrMalformed},
		{"trailing", append(good[:len(good):len(good)], 0), 0, ae.ErrMalformed},
		{"too large", good, len(good) - 1, ae.ErrTooLarge},
		{"huge count", []byte{1, 0, 0xff, 0xff, 0xff, 0x0f}, 0, ae.ErrTruncated},
		{"bad status", []byte{1, 0, 0, 0, 1, 3 << 2, 0}, 0, ae.ErrMalformed},
		{"non-minimal varint", []byte{1, 0, 0x80, 0x00, 0, 0, 0}, 0, ae.ErrMalformed},
	} {
		if _, err := ae.DecodeMessage(tc.b, tc.max); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, m := range sampleMessages() {
		b, _ := ae.AppendMessage(nil, m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ae.DecodeMessage(b, 1<<20)
		if err != nil {
			for _, want := range []error{ae.ErrTruncated, ae.ErrTooLarge, ae.ErrUnknownVersion, ae.ErrMalformed} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("error %v wraps no sentinel", err)
		}
		again, err := ae.AppendMessage(nil, m)
		if err != nil {
			t.Fatalf("re-encoding a decoded message: %v", err)
		}
		m2, err := ae.DecodeMessage(again, 0)
		if err != nil || !reflect.DeepEqual(normalize(m), normalize(m2)) {
			t.Fatalf("re-decoding: %v\n%+v\n%+v", err, m, m2)
		}
	})
}

// TestWriteFuzzCorpus regenerates the committed seed corpus when
// GOSSIPMESH_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("GOSSIPMESH_WRITE_CORPUS") != "1" {
		t.Skip("set GOSSIPMESH_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeMessage")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds := [][]byte{nil, {1}, {2, 0, 0, 0, 0, 0}, {1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}}
	for _, m := range sampleMessages() {
		b, _ := ae.AppendMessage(nil, m)
		seeds = append(seeds, b, b[:len(b)/2])
	}
	for i, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
