package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// attackerHost is a bare libp2p host on loopback: it speaks the mesh's
// protocols only as far as a test makes it.
func attackerHost(t testing.TB, opts ...libp2p.Option) host.Host {
	t.Helper()
	opts = append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay()}, opts...)
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func dial(h host.Host, n *Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return h.Connect(ctx, peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()})
}

func newIdentity(t testing.TB) (crypto.PrivKey, peer.ID) {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, id
}

// writeAndCheck puts keys on one node and returns them, so a test can check
// that nothing acknowledged is lost.
func writeKeys(t testing.TB, n *Node, prefix string, count int) map[string]string {
	t.Helper()
	keys := make(map[string]string, count)
	for i := range count {
		k, v := fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("v%d", i)
		if err := n.Put(context.Background(), []byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
		keys[k] = v
	}
	return keys
}

func notConnected(a *Node, id peer.ID) func() error {
	return func() error {
		if a.Host().Network().Connectedness(id) == network.Connected {
			return errors.New("still connected")
		}
		return nil
	}
}

func TestSwarmKeyKeepsOutsidersOut(t *testing.T) {
	key := GenerateSwarmKey()
	private := func(k []byte) func(*Config) {
		return func(c *Config) {
			c.SwarmKey = k
			// QUIC is asked for, and must be dropped with a swarm key.
			c.ListenAddrs = append(c.ListenAddrs, multiaddr.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"))
		}
	}
	nodes := startNodes(t, 2, private(key))
	a, b := nodes[0], nodes[1]
	for _, addr := range a.Addrs() {
		if _, err := addr.ValueForProtocol(multiaddr.P_UDP); err == nil {
			t.Fatalf("private node listens on %s; QUIC cannot carry a swarm key", addr)
		}
	}
	acked := writeKeys(t, a, "before", 20)

	noKey := attackerHost(t)
	otherKey, err := loadSwarmKey(&Config{SwarmKey: GenerateSwarmKey()})
	if err != nil {
		t.Fatal(err)
	}
	wrongKey := attackerHost(t, libp2p.PrivateNetwork(otherKey))
	for name, h := range map[string]host.Host{"no swarm key": noKey, "another swarm key": wrongKey} {
		if err := dial(h, a); err == nil {
			t.Errorf("%s: connected to a private node", name)
		}
		waitFor(t, 5*time.Second, name+" not connected", notConnected(a, h.ID()))
	}
	// A node of the mesh without the key is refused the same way.
	outsider := startNode(t, testConfig())
	if err := dial(outsider.Host(), a); err == nil {
		t.Fatal("a node without the swarm key connected")
	}

	// The private mesh itself works and loses nothing.
	link(t, a, b)
	for k, v := range writeKeys(t, b, "after", 20) {
		acked[k] = v
	}
	waitFor(t, 10*time.Second, "private mesh converges", converged(t, nodes))
	for _, n := range nodes {
		if err := hasAll(context.Background(), n, acked); err != nil {
			t.Fatal(err)
		}
	}
	if len(outsider.Peers()) != 0 {
		t.Fatalf("outsider has members: %v", outsider.Peers())
	}
}

func TestBadSwarmKeyIsRefusedAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "swarm.key")
	if err := os.WriteFile(path, []byte("/key/swarm/psk/1.0.0/\n/base16/\nnothex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Config){
		"malformed file": func(c *Config) { c.SwarmKeyFile = path },
		"missing file":   func(c *Config) { c.SwarmKeyFile = path + ".nope" },
		"bad bytes":      func(c *Config) { c.SwarmKey = []byte("garbage") },
	} {
		cfg := testConfig()
		edit(&cfg)
		_, err := New(context.Background(), cfg)
		if !errors.Is(err, ErrSwarmKey) || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrSwarmKey and ErrInvalidConfig", name, err)
		}
	}
	cfg := testConfig()
	cfg.SwarmKey = GenerateSwarmKey()
	cfg.ListenAddrs = []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")}
	if _, err := New(context.Background(), cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("QUIC-only private node: got %v, want ErrInvalidConfig", err)
	}
}

func TestAllowlistAdmitsOnlyListedPeers(t *testing.T) {
	keyB, idB := newIdentity(t)
	keyC, idC := newIdentity(t)
	list := filepath.Join(t.TempDir(), "allow")
	if err := os.WriteFile(list, []byte("# mesh members\n"+idB.String()+"  # b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgA := testConfig()
	cfgA.AllowlistFile = list
	a := startNode(t, cfgA)
	cfgB, cfgC := testConfig(), testConfig()
	cfgB.Identity, cfgC.Identity = keyB, keyC
	b, c := startNode(t, cfgB), startNode(t, cfgC)
	acked := writeKeys(t, a, "a", 10)

	// c is not listed: refused whichever side dials.
	if err := dial(c.Host(), a); err == nil {
		waitFor(t, 5*time.Second, "unlisted peer dropped", notConnected(a, idC))
	}
	if err := dial(a.Host(), c); err == nil {
		t.Fatal("a dialled an unlisted peer")
	}
	if got := a.SecurityStats().ConnsRefused; got == 0 {
		t.Fatal("gater refused nothing")
	}
	// b is listed: it connects and converges.
	link(t, a, b)
	waitFor(t, 10*time.Second, "listed peer converges", converged(t, []*Node{a, b}))

	// Reload: c in, b out.
	if err := os.WriteFile(list, []byte(idC.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.ReloadAllowlist(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "delisted peer dropped", notConnected(a, idB))
	link(t, a, c)
	waitFor(t, 10*time.Second, "newly listed peer converges", converged(t, []*Node{a, c}))
	for _, n := range []*Node{a, b, c} {
		if err := hasAll(context.Background(), n, acked); err != nil {
			t.Fatal(err)
		}
	}
	// A bad file keeps the list in force.
	if err := os.WriteFile(list, []byte("not-a-peer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.ReloadAllowlist(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad allowlist: got %v, want ErrInvalidConfig", err)
	}
	if a.Host().Network().Connectedness(idC) != network.Connected {
		t.Fatal("a bad reload dropped a listed peer")
	}
	if err := startNode(t, testConfig()).ReloadAllowlist(); !errors.Is(err, ErrNoAllowlistFile) {
		t.Fatalf("reload without a file: got %v", err)
	}
}
