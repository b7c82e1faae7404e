package simulations

import (
	"context"
	"errors"
	"testing"

	ds "github.com/ipfs/go-datastore"
)

// A crash keeps what was synced and loses the rest, and a crashed store
// takes no writes until it recovers.
func TestProbeStoreCrashLosesWhatWasNotSynced(t *testing.T) {
	ctx := context.Background()
	p := newProbeStore()
	synced, unsynced := ds.NewKey("/k/a"), ds.NewKey("/k/b")
	b, err := p.Batch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, synced, []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(ctx, ds.NewKey("/")); err != nil {
		t.Fatal(err)
	}
	if err := p.Put(ctx, unsynced, []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(ctx, synced); err != nil {
		t.Fatal(err)
	}
	p.crash()
	if err := p.Put(ctx, unsynced, []byte("3")); !errors.Is(err, errCrashed) {
		t.Fatalf("write to a crashed store: %v", err)
	}
	if err := p.recover(); err != nil {
		t.Fatal(err)
	}
	if v, err := p.Get(ctx, synced); err != nil || string(v) != "1" {
		t.Fatalf("synced write after the crash: %q, %v", v, err)
	}
	if _, err := p.Get(ctx, unsynced); !errors.Is(err, ds.ErrNotFound) {
		t.Fatalf("unsynced write survived the crash: %v", err)
	}
}

// An empty value is a value, not a delete: it survives a crash once synced.
func TestProbeStoreKeepsEmptyValuesAcrossACrash(t *testing.T) {
	ctx := context.Background()
	p := newProbeStore()
	inBatch, direct := ds.NewKey("/t/a"), ds.NewKey("/t/b")
	b, err := p.Batch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, inBatch, []byte{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Put(ctx, direct, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(ctx, ds.NewKey("/")); err != nil {
		t.Fatal(err)
	}
	p.crash()
	if err := p.recover(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []ds.Key{inBatch, direct} {
		if ok, err := p.Has(ctx, k); err != nil || !ok {
			t.Fatalf("%s with an empty value after the crash: %v, %v", k, ok, err)
		}
	}
}

// The store reports the bytes it holds, so a simulated node can run under
// a quota: more after writes, less after deletes, and only the durable
// content after a crash.
func TestProbeStoreReportsItsSize(t *testing.T) {
	ctx := context.Background()
	p := newProbeStore()
	size := func() uint64 {
		t.Helper()
		n, err := ds.DiskUsage(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	empty := size()
	if err := p.Put(ctx, ds.NewKey("/k/a"), make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(ctx, ds.NewKey("/")); err != nil {
		t.Fatal(err)
	}
	one := size()
	if one < empty+1000 {
		t.Fatalf("size %d after a 1000-byte write, %d before", one, empty)
	}
	if err := p.Put(ctx, ds.NewKey("/k/b"), make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	p.crash()
	if err := p.recover(); err != nil {
		t.Fatal(err)
	}
	if got := size(); got != one {
		t.Fatalf("size %d after a crash, want %d (the synced content)", got, one)
	}
	if err := p.Delete(ctx, ds.NewKey("/k/a")); err != nil {
		t.Fatal(err)
	}
	if got := size(); got != empty {
		t.Fatalf("size %d after the delete, want %d", got, empty)
	}
}
