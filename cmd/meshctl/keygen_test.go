package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/gossipmesh/gossipmesh/node/httpapi"
	"github.com/multiformats/go-multiaddr"
)

// TestKeygenPrintsKeysTheNodeAccepts starts a node with a printed swarm key
// and store key, so the two formats cannot drift apart.
func TestKeygenPrintsKeysTheNodeAccepts(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	dir := t.TempDir()
	swarm, store := filepath.Join(dir, "swarm.key"), filepath.Join(dir, "store.key")
	os.WriteFile(swarm, []byte(h.ok("keygen")), 0o600)
	os.WriteFile(store, []byte(h.ok("keygen", "store")), 0o600)
	if h.ok("keygen") == h.ok("keygen") {
		t.Fatal("two swarm keys are equal")
	}
	cfg := node.DefaultConfig()
	cfg.Memory, cfg.MDNS = true, false
	cfg.ListenAddrs = []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/0")}
	cfg.SwarmKeyFile, cfg.EncryptionKeyFile = swarm, store
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("node refuses meshctl's keys: %v", err)
	}
	n.Close()
	if r := h.ctl("keygen", "nope"); r.code != 2 {
		t.Fatalf("unknown kind: exit %d, want 2", r.code)
	}
}
