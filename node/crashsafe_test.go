package node

import (
	"context"
	"errors"
	"fmt"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	ds "github.com/ipfs/go-datastore"
	pebbleds "github.com/ipfs/go-ds-pebble"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// heldSyncStore holds every Sync while hold is set, so a test can crash a
// node between a batch's write and its fsync.
type heldSyncStore struct {
	ds.Batching
	hold    atomic.Bool
	release chan struct{}
}

var _ ds.Batching = (*heldSyncStore)(nil)

func (s *heldSyncStore) Sync(ctx context.Context, prefix ds.Key) error {
	if s.hold.Load() {
		<-s.release
	}
	return s.Batching.Sync(ctx, prefix)
}

// openCrashablePebble opens pebble on fs, written without sync as meshd's
// store is, so a crash of fs loses every batch not followed by a Sync.
func openCrashablePebble(t testing.TB, fs *vfs.MemFS) *pebbleds.Datastore {
	t.Helper()
	store, err := pebbleds.NewDatastore("db", pebbleds.WithPebbleOpts(&pebble.Options{FS: fs}), pebbleds.WithPebbleWriteOptions(pebble.NoSync))
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// A node whose increment and add reached a peer before they were durable
// (by gossip or anti-entropy), and which then crashed and lost them, must
// not reuse its counter entry or dot: its next acknowledged increment and
// add count everywhere, beside the ones the peer kept.
func TestCrashBeforeFsyncDoesNotAbsorbLaterWrites(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewCrashableMem()
	disk := openCrashablePebble(t, fs)
	held := &heldSyncStore{Batching: disk, release: make(chan struct{})}
	identity, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Memory, cfg.Datastore, cfg.Identity = false, held, identity
	a := startNode(t, cfg)
	b := startNodes(t, 1, nil)[0]
	link(t, a, b)
	if err := a.Put(ctx, []byte("warm"), []byte("up")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a first write at the peer", func() error {
		_, err := b.Get(ctx, []byte("warm"))
		return err
	})

	held.hold.Store(true)
	released := false
	t.Cleanup(func() {
		if !released {
			close(held.release)
		}
	})
	var inflight gosync.WaitGroup
	inflight.Go(func() { _, _ = a.Incr(ctx, []byte("c"), 5) })
	inflight.Go(func() { _ = a.SAdd(ctx, []byte("s"), []byte("x")) })
	waitFor(t, 10*time.Second, "the writes committed, not yet synced", func() error {
		v, err := a.Counter(ctx, []byte("c"))
		if err != nil || v != 5 {
			return fmt.Errorf("counter %d (%v)", v, err)
		}
		if ok, err := a.SMembers(ctx, []byte("s")); err != nil || len(ok) != 1 {
			return fmt.Errorf("members %q (%v)", ok, err)
		}
		return nil
	})
	// Whatever path gives them away before the fsync (gossip published
	// early, a reader of the store that does not wait for it: a session,
	// a handoff, a backup), the peer ends up with them.
	var leaked []StateRecord
	for rec, err := range a.ExportStates(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		leaked = append(leaked, rec)
	}
	if err := b.MergeStates(ctx, leaked); err != nil {
		t.Fatal(err)
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	close(held.release) // let the abandoned node finish on the old disk
	released = true
	held.hold.Store(false)
	inflight.Wait()
	a.Close()
	disk.Close()

	disk = openCrashablePebble(t, crashed)
	t.Cleanup(func() { disk.Close() })
	cfg.Datastore = disk
	a = startNode(t, cfg)
	if _, err := a.Counter(ctx, []byte("c")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the crash kept an unsynced write (%v): the test proves nothing", err)
	}
	link(t, a, b)
	if _, err := a.Incr(ctx, []byte("c"), 1); err != nil {
		t.Fatal(err)
	}
	if err := a.SAdd(ctx, []byte("s"), []byte("y")); err != nil {
		t.Fatal(err)
	}
	for name, n := range map[string]*Node{"restarted node": a, "peer": b} {
		waitFor(t, 20*time.Second, "every write counted at the "+name, func() error {
			v, err := n.Counter(ctx, []byte("c"))
			if err != nil || v != 6 {
				return fmt.Errorf("counter %d (%v), want 5 given away + 1 acknowledged", v, err)
			}
			ms, err := n.SMembers(ctx, []byte("s"))
			if err != nil || len(ms) != 2 {
				return fmt.Errorf("members %q (%v), want x given away and y acknowledged", ms, err)
			}
			return nil
		})
	}
}

// failingSyncStore fails every Sync while fail is set.
type failingSyncStore struct {
	ds.Batching
	fail atomic.Bool
}

func (s *failingSyncStore) Sync(ctx context.Context, prefix ds.Key) error {
	if s.fail.Load() {
		return errors.New("disk gone")
	}
	return s.Batching.Sync(ctx, prefix)
}

// After a failed fsync nothing is released, not even by a durability
// barrier with no writes of its own, until a sync succeeds again.
func TestFailedSyncReleasesNothingUntilASyncSucceeds(t *testing.T) {
	ctx := context.Background()
	store := &failingSyncStore{Batching: openCrashablePebble(t, vfs.NewCrashableMem())}
	t.Cleanup(func() { store.Batching.Close() })
	cfg := testConfig()
	cfg.Memory, cfg.Datastore = false, store
	n := startNode(t, cfg)
	store.fail.Store(true)
	if err := n.Put(ctx, []byte("k1"), []byte("v")); !errors.Is(err, ErrStore) {
		t.Fatalf("put with a failing fsync: %v, want ErrStore", err)
	}
	if err := n.durableBarrier(ctx); !errors.Is(err, ErrStore) {
		t.Fatalf("barrier after a failed fsync: %v, want ErrStore", err)
	}
	store.fail.Store(false)
	if err := n.durableBarrier(ctx); err != nil {
		t.Fatalf("barrier once the disk is back: %v", err)
	}
	if err := n.Put(ctx, []byte("k2"), []byte("v")); err != nil {
		t.Fatal(err)
	}
}
