package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSIGHUPReloadsAllowlist: a peer not on the list is refused; after the
// file lists it and SIGHUP arrives, it connects, without a restart.
func TestSIGHUPReloadsAllowlist(t *testing.T) {
	key, _, _ := crypto.GenerateEd25519Key(nil)
	id, _ := peer.IDFromPrivateKey(key)
	other, _, _ := crypto.GenerateEd25519Key(nil)
	otherID, _ := peer.IDFromPrivateKey(other)
	list := filepath.Join(t.TempDir(), "allow")
	os.WriteFile(list, []byte(otherID.String()+"\n"), 0o600)

	pr, pw := io.Pipe()
	var logs lockedBuf
	sigs := make(chan os.Signal, 2)
	code := make(chan int, 1)
	go func() {
		code <- run([]string{"--memory", "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--mdns=false",
			"--allowlist", list, "--open"}, pw, &logs, sigs)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var addr multiaddr.Multiaddr
	for addr == nil && sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "meshd: listening on "); ok {
			addr = multiaddr.StringCast(a)
		}
	}
	go io.Copy(io.Discard, pr)
	if addr == nil {
		t.Fatal("no listen address printed")
	}

	cfg := node.DefaultConfig()
	cfg.Memory, cfg.MDNS, cfg.Identity = true, false, key
	cfg.ListenAddrs = []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/0")}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	connected := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if n.Connect(ctx, addr) != nil {
			return false
		}
		// The daemon's gater may drop us just after the handshake.
		deadline := time.Now().Add(500 * time.Millisecond)
		for time.Now().Before(deadline) {
			if len(n.Host().Network().ConnsToPeer(mustPeer(t, addr))) == 0 {
				return false
			}
			time.Sleep(20 * time.Millisecond)
		}
		return true
	}
	if connected() {
		t.Fatal("unlisted peer connected")
	}
	os.WriteFile(list, []byte(otherID.String()+"\n"+id.String()+"\n"), 0o600)
	sigs <- syscall.SIGHUP
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "allowlist reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !connected() {
		t.Fatal("listed peer refused after SIGHUP")
	}
	sigs <- syscall.SIGTERM
	if c := <-code; c != 0 {
		t.Fatalf("exit %d", c)
	}
}

func mustPeer(t *testing.T, a multiaddr.Multiaddr) peer.ID {
	info, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}
