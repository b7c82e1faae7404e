package node

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	pebbleds "github.com/ipfs/go-ds-pebble"
)

func TestEpochBumpsOnlyAfterAnUncleanStop(t *testing.T) {
	ctx := context.Background()
	store := dssync.MutexWrap(ds.NewMapDatastore())
	steps := []struct {
		clean   bool // the run before this start stopped cleanly
		hasData bool
		want    uint64
	}{
		{false, false, 0}, // a new store
		{true, true, 0},
		{false, true, 1},
		{false, true, 2},
		{true, true, 2},
	}
	for i, st := range steps {
		if st.clean {
			if err := markClean(ctx, store); err != nil {
				t.Fatal(err)
			}
		}
		got, err := startEpoch(ctx, store, st.hasData)
		if err != nil {
			t.Fatal(err)
		}
		if got != st.want {
			t.Fatalf("start %d: epoch %d, want %d", i, got, st.want)
		}
	}
	// A store written before epochs were kept, with data and no marker,
	// may have stopped uncleanly.
	old := dssync.MutexWrap(ds.NewMapDatastore())
	if got, _ := startEpoch(ctx, old, true); got != 1 {
		t.Fatalf("old store with data: epoch %d, want 1", got)
	}
	if actorID("p", 0) == actorID("p", 1) || actorID("p", 1) == actorID("p", 2) {
		t.Fatal("epochs must give distinct actors")
	}
}

// Close is a barrier: afterwards every method returns ErrClosed, none
// touches the closed store, and the next start finds the clean marker.
func TestMethodsAfterCloseReturnErrClosed(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.Memory, cfg.DataDir = false, t.TempDir() // pebble, owned and closed by the node
	n := startNode(t, cfg)
	if err := n.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Get(ctx, []byte("k")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	for _, err := range n.Keys(ctx, nil) {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Keys after Close: %v", err)
		}
	}
	for _, err := range n.ExportStates(ctx) {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("ExportStates after Close: %v", err)
		}
	}
	if err := n.Put(ctx, []byte("k"), []byte("w")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	store, err := pebbleds.NewDatastore(filepath.Join(cfg.DataDir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if ok, _ := store.Has(ctx, ds.NewKey(cleanKey)); !ok {
		t.Fatal("a clean stop left no marker")
	}
}
