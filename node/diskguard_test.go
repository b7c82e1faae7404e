package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDisk is a free-space measure a test sets.
type fakeDisk struct{ free atomic.Uint64 }

func (d *fakeDisk) measure() (uint64, error) { return d.free.Load(), nil }

// waitStoreFull waits until n's status says full (or not).
func waitStoreFull(t *testing.T, n *Node, full bool) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("store full = %v", full), func() error {
		st, err := n.Status(context.Background())
		if err != nil {
			return err
		}
		if st.StoreFull != full {
			return fmt.Errorf("store full %v, free %d", st.StoreFull, st.FreeBytes)
		}
		return nil
	})
}

func TestDiskGuardRefusesLocalWritesBelowTheFloorAndRecovers(t *testing.T) {
	ctx := context.Background()
	disk := &fakeDisk{}
	disk.free.Store(1 << 30)
	cfg := testConfig()
	cfg.MinFreeBytes = 1 << 20
	cfg.freeSpace = disk.measure
	n := startNode(t, cfg)
	if err := n.Put(ctx, []byte("before"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Incr(ctx, []byte("hits"), 3); err != nil {
		t.Fatal(err)
	}

	disk.free.Store(1<<20 - 1)
	waitStoreFull(t, n, true)
	for name, op := range map[string]func() error{
		"put":    func() error { return n.Put(ctx, []byte("after"), []byte("v")) },
		"delete": func() error { return n.Delete(ctx, []byte("before")) },
		"incr":   func() error { _, err := n.Incr(ctx, []byte("hits"), 1); return err },
		"sadd":   func() error { return n.SAdd(ctx, []byte("set"), []byte("m")) },
		"mv":     func() error { return n.WriteMV(ctx, []byte("mv"), []byte("v")) },
		"restore": func() error {
			return n.MergeStates(ctx, []StateRecord{{Key: []byte("r"), State: mustEncodeLWW(t, n, "r")}})
		},
	} {
		if err := op(); !errors.Is(err, ErrStoreFull) {
			t.Errorf("%s while full: %v, want ErrStoreFull", name, err)
		}
	}
	// Reads go on, and nothing refused is visible.
	if v, err := n.Get(ctx, []byte("before")); err != nil || string(v) != "v" {
		t.Fatalf("get while full = %q, %v", v, err)
	}
	if c, err := n.Counter(ctx, []byte("hits")); err != nil || c != 3 {
		t.Fatalf("counter while full = %d, %v; want 3", c, err)
	}
	if _, err := n.Get(ctx, []byte("after")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused put is visible: %v", err)
	}
	st, err := n.Status(ctx)
	if err != nil || st.FreeBytes != 1<<20-1 {
		t.Fatalf("status free bytes = %d, %v", st.FreeBytes, err)
	}

	disk.free.Store(1 << 30)
	waitStoreFull(t, n, false)
	if err := n.Put(ctx, []byte("after"), []byte("v2")); err != nil {
		t.Fatalf("put after space returned: %v", err)
	}
}

// mustEncodeLWW returns the encoded register state another node would
// send for key.
func mustEncodeLWW(t *testing.T, n *Node, key string) []byte {
	t.Helper()
	other := startNode(t, testConfig())
	if err := other.Put(context.Background(), []byte(key), []byte("restored")); err != nil {
		t.Fatal(err)
	}
	for rec, err := range other.ExportStates(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if string(rec.Key) == key {
			return rec.State
		}
	}
	t.Fatalf("no state of %q exported", key)
	return nil
}

func TestFullNodeRefusesRemoteStatesQuietlyAndCatchesUpLater(t *testing.T) {
	ctx := context.Background()
	disk := &fakeDisk{}
	disk.free.Store(1 << 30)
	cfg := testConfig()
	cfg.MinFreeBytes = 1 << 20
	cfg.freeSpace = disk.measure
	full := startNode(t, cfg)
	peer := startNode(t, testConfig())
	link(t, full, peer)
	if err := full.Put(ctx, []byte("held"), []byte("by full")); err != nil {
		t.Fatal(err)
	}
	disk.free.Store(0)
	waitStoreFull(t, full, true)

	want := map[string]string{}
	for i := range 20 {
		k, v := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)
		if err := peer.Put(ctx, []byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	// Anti-entropy from the peer: what the full node holds still reaches
	// it, what it lacks is not stored, and neither side sees invalid input.
	if err := peer.SyncWith(ctx, full.ID()); err != nil {
		t.Fatalf("sync into the full node: %v", err)
	}
	if v, err := peer.Get(ctx, []byte("held")); err != nil || string(v) != "by full" {
		t.Fatalf("peer did not get the full node's data: %q, %v", v, err)
	}
	if err := full.SyncWith(ctx, peer.ID()); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("sync from the full node = %v, want ErrStoreFull (records not stored)", err)
	}
	for k := range want {
		if _, err := full.Get(ctx, []byte(k)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("full node stored %s: %v", k, err)
		}
	}
	if got := full.Stats().RemoteRefused; got == 0 {
		t.Fatalf("no remote state counted as refused")
	}
	for _, n := range []*Node{full, peer} {
		if st := n.Stats(); st.DeltasInvalid != 0 || st.StoreErrors != 0 {
			t.Fatalf("a full store counted as invalid input or store errors: %+v", st)
		}
	}

	disk.free.Store(1 << 30)
	waitStoreFull(t, full, false)
	waitFor(t, 20*time.Second, "full node catches up", func() error {
		if err := full.SyncWith(ctx, peer.ID()); err != nil {
			return err
		}
		return hasAll(ctx, full, want)
	})
}

func TestPebbleFatalIsLoggedAndPanics(t *testing.T) {
	var logs syncBuffer
	l := pebbleLogger{log: slog.New(slog.NewTextHandler(&logs, nil)), dir: t.TempDir()}
	defer func() {
		r := recover()
		err, ok := r.(error)
		if !ok || !errors.Is(err, ErrStore) {
			t.Fatalf("Fatalf recovered %v, want an ErrStore panic", r)
		}
		if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "no space left on device") {
			t.Fatalf("fatal not logged at error level with its cause: %q", logs.String())
		}
	}()
	l.Fatalf("pebble: fatal commit error: %v", "write 000007.log: no space left on device")
	t.Fatalf("Fatalf returned")
}
