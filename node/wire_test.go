package node

import (
	"bytes"
	"testing"

	"github.com/gossipmesh/gossipmesh/sync/merkle"
)

// SyncWire frames as a node does: what it writes reads back unchanged,
// counts the length prefix and flag, compresses a redundant payload above
// CompressAbove, and carries a hello of the configured partitions.
func TestSyncWireFramesAsTheNode(t *testing.T) {
	cfg := DefaultConfig()
	w, err := NewSyncWire(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	small := []byte("a small frame")
	n, err := w.Write(small)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + 1 + len(small); n != want { // one-byte length, flag, payload
		t.Fatalf("small frame took %d bytes, want %d", n, want)
	}
	big := bytes.Repeat([]byte("redundant "), cfg.CompressAbove)
	if n, err = w.Write(big); err != nil || n >= len(big)/4 {
		t.Fatalf("a %d-byte redundant frame took %d bytes (err %v): not compressed", len(big), n, err)
	}
	for _, want := range [][]byte{small, big} {
		got, err := w.Read()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read back %d bytes (err %v), want %d", len(got), err, len(want))
		}
	}
	roots := make([]merkle.Hash, cfg.Partitions)
	roots[3][0] = 7
	if n, err = w.WriteHello(cfg, roots); err != nil || n < cfg.Partitions*merkle.HashSize {
		t.Fatalf("hello of %d partitions took %d bytes (err %v)", cfg.Partitions, n, err)
	}
	got, err := w.ReadHello(cfg)
	if err != nil || len(got) != cfg.Partitions || got[3] != roots[3] {
		t.Fatalf("hello read back %d roots (err %v)", len(got), err)
	}
	if PartitionOf([]byte("k"), cfg.Partitions) != partitionOf([]byte("k"), cfg.Partitions) {
		t.Fatal("PartitionOf places keys differently from the node")
	}
}
