package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory, or skips.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func TestFullDiskIsAStateNotACrash(t *testing.T) {
	ctx := context.Background()
	dir := mountTmpfs(t, 64<<20)
	cfg := testConfig()
	cfg.Memory = false
	cfg.DataDir = filepath.Join(dir, "data")
	// The floor leaves pebble room to flush its memtables (2 of 4 MiB)
	// and compact what it flushed.
	cfg.MinFreeBytes = 24 << 20
	cfg.BallastBytes = 8 << 20
	if os.Getenv("DISK_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	n, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { n.Close() }()
	ballast := filepath.Join(cfg.DataDir, ballastName)
	if fi, err := os.Stat(ballast); err != nil || fi.Size() != cfg.BallastBytes {
		t.Fatalf("ballast: %v, %v", fi, err)
	}

	// Write incompressible values until the floor refuses one.
	acked := map[string][]byte{}
	val := func() []byte {
		b := make([]byte, 16<<10)
		_, _ = rand.Read(b)
		return b
	}
	// fill writes until the floor refuses a write, which must come.
	fill := func(n *Node, prefix string) error {
		t.Helper()
		for i := range 4000 {
			k, v := fmt.Sprintf("%s%05d", prefix, i), val()
			switch err := n.Put(ctx, []byte(k), v); {
			case err == nil:
				acked[k] = v
			case errors.Is(err, ErrStoreFull):
				return err
			default:
				t.Fatalf("put %s after %d acknowledged: %v, want nil or ErrStoreFull", k, len(acked), err)
			}
		}
		t.Fatalf("%d writes of 16 KiB on a 64 MiB filesystem and none refused", len(acked))
		return nil
	}
	refused := fill(n, "k")
	t.Logf("%d writes acknowledged before the floor: %v", len(acked), refused)
	st, err := n.Status(ctx)
	if err != nil || !st.StoreFull {
		t.Fatalf("status while full: %+v, %v", st, err)
	}
	checkAcked := func(n *Node) {
		t.Helper()
		for k, v := range acked {
			got, err := n.Get(ctx, []byte(k))
			if err != nil || string(got) != string(v) {
				t.Fatalf("acknowledged %s lost: %d bytes, %v", k, len(got), err)
			}
		}
	}
	checkAcked(n)

	// A second node's anti-entropy into the full node is refused, not
	// stored, and not an error on the peer's side.
	peer := startNode(t, testConfig())
	for i := range 10 {
		if err := peer.Put(ctx, fmt.Appendf(nil, "p%d", i), val()); err != nil {
			t.Fatal(err)
		}
	}
	// Pebble's compactions may give back room once the node filled up,
	// and the peer's states would then be rightly stored: a file takes
	// 8 MiB more of the filesystem while the peer syncs.
	squeeze := filepath.Join(dir, "squeeze")
	if err := os.WriteFile(squeeze, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	waitStoreFull(t, n, true)
	link(t, n, peer)
	if err := peer.SyncWith(ctx, n.ID()); err != nil {
		t.Fatalf("sync into the full node: %v", err)
	}
	// The peer's session ends once it sent its last records; the full
	// node may still be stepping them.
	waitFor(t, 10*time.Second, "the full node counts the states it refused", func() error {
		if n.Stats().RemoteRefused == 0 {
			return errors.New("none counted")
		}
		return nil
	})
	if _, err := n.Get(ctx, []byte("p0")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("full node stored a remote state: %v", err)
	}
	if err := os.Remove(squeeze); err != nil {
		t.Fatal(err)
	}

	// Restarted on the (nearly) full disk, the node starts, serves what it
	// holds and refuses writes at the floor.
	if err := n.Close(); err != nil {
		t.Fatalf("close while full: %v", err)
	}
	if n, err = New(ctx, cfg); err != nil {
		t.Fatalf("restart while full: %v", err)
	}
	checkAcked(n)
	fill(n, "r") // closing may have freed a little: fill that too
	checkAcked(n)

	// Deleting the ballast makes room: the node writes again by itself.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitStoreFull(t, n, false)
	for i := range 5 {
		k, v := fmt.Sprintf("again%d", i), val()
		if err := n.Put(ctx, []byte(k), v); err != nil {
			t.Fatalf("put after the ballast went: %v", err)
		}
		acked[k] = v
	}
	checkAcked(n)

	if err := n.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	n, err = New(ctx, cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	checkAcked(n)
}
