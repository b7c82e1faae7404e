package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multiformats/go-multiaddr"
)

// testConfig is a loopback, in-memory node with fast anti-entropy.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Memory = true
	cfg.MDNS = false
	cfg.ListenAddrs = []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/0")}
	cfg.SyncInterval = 300 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

func startNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func startNodes(t testing.TB, count int, edit func(*Config)) []*Node {
	t.Helper()
	nodes := make([]*Node, count)
	for i := range nodes {
		cfg := testConfig()
		if edit != nil {
			edit(&cfg)
		}
		nodes[i] = startNode(t, cfg)
	}
	return nodes
}

// link connects b to a.
func link(t testing.TB, a, b *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Connect(ctx, a.Addrs()[0]); err != nil {
		t.Fatalf("connect: %v", err)
	}
}

// chain connects each node to the previous one and a few random-ish others,
// so gossip has to hop.
func chain(t testing.TB, nodes []*Node) {
	for i := 1; i < len(nodes); i++ {
		link(t, nodes[i-1], nodes[i])
		if i >= 3 {
			link(t, nodes[i-3], nodes[i])
		}
	}
}

// waitFor polls cond until it holds or the deadline passes. With
// GOSSIPMESH_TRACE_WAIT set it logs each new reason for waiting, which
// shows where the time to converge goes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	start, last := time.Now(), ""
	for {
		err := cond()
		if err == nil {
			return
		}
		if os.Getenv("GOSSIPMESH_TRACE_WAIT") != "" && err.Error() != last {
			last = err.Error()
			t.Logf("  %v %s: %s", time.Since(start).Round(time.Millisecond), what, last)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v: %v", what, timeout, err)
		}
		<-tick.C
	}
}

func rootsOf(t testing.TB, n *Node) string {
	st, err := n.Status(context.Background())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var b bytes.Buffer
	for _, p := range st.Partitions {
		fmt.Fprintf(&b, "%x,", p.Root)
	}
	return b.String()
}

func converged(t testing.TB, nodes []*Node) func() error {
	return func() error {
		want := rootsOf(t, nodes[0])
		for i, n := range nodes[1:] {
			if got := rootsOf(t, n); got != want {
				return fmt.Errorf("node %d roots differ from node 0", i+1)
			}
		}
		return nil
	}
}

func hasAll(ctx context.Context, n *Node, keys map[string]string) error {
	for k, v := range keys {
		got, err := n.Get(ctx, []byte(k))
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		if string(got) != v {
			return fmt.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	return nil
}

func testConverge(t *testing.T, count, perNode int) {
	ctx := context.Background()
	nodes := startNodes(t, count, nil)
	chain(t, nodes)
	want := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perNode {
				k, v := fmt.Sprintf("n%d/k%d", i, j), fmt.Sprintf("v%d.%d", i, j)
				if err := n.Put(ctx, []byte(k), []byte(v)); err != nil {
					t.Errorf("put: %v", err)
					return
				}
				mu.Lock()
				want[k] = v
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i, n := range nodes {
		waitFor(t, 30*time.Second, fmt.Sprintf("node %d has every key", i), func() error { return hasAll(ctx, n, want) })
	}
	waitFor(t, 30*time.Second, "equal roots", converged(t, nodes))
}

func TestThreeNodesConverge(t *testing.T) { testConverge(t, 3, 50) }

func TestTenNodesConverge(t *testing.T) { testConverge(t, 10, 20) }

func TestOfflineNodeCatchesUpByAntiEntropyAlone(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 2, nil)
	link(t, nodes[0], nodes[1])
	want := map[string]string{}
	for i := range 1000 {
		k, v := fmt.Sprintf("key-%04d", i), fmt.Sprintf("value-%d", i)
		if err := nodes[i%2].Put(ctx, []byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	cfg := testConfig()
	cfg.DisableGossip = true
	late := startNode(t, cfg)
	link(t, nodes[0], late)
	waitFor(t, 30*time.Second, "late joiner has every key", func() error { return hasAll(ctx, late, want) })
	waitFor(t, 30*time.Second, "equal roots", converged(t, append(nodes, late)))
	if late.Stats().DeltasIn != 0 {
		t.Fatalf("late joiner received %d gossip deltas with gossip disabled", late.Stats().DeltasIn)
	}
}

func TestRestartOnSameStoreKeepsAcknowledgedWrites(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.Memory = false
	cfg.DataDir = t.TempDir()
	n := startNode(t, cfg)
	id := n.ID()
	want := map[string]string{}
	for i := range 200 {
		k, v := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)
		if err := n.Put(ctx, []byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	if _, err := n.Incr(ctx, []byte("hits"), 7); err != nil {
		t.Fatal(err)
	}
	roots := rootsOf(t, n)
	if err := n.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	again := startNode(t, cfg)
	if again.ID() != id {
		t.Fatalf("identity changed across restart: %s then %s", id, again.ID())
	}
	if err := hasAll(ctx, again, want); err != nil {
		t.Fatal(err)
	}
	if c, err := again.Counter(ctx, []byte("hits")); err != nil || c != 7 {
		t.Fatalf("counter after restart = %d, %v; want 7", c, err)
	}
	if got := rootsOf(t, again); got != roots {
		t.Fatalf("roots rebuilt from the store differ from before the restart")
	}
}

func TestConcurrentWritesToOneKeyAgree(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 3, nil)
	chain(t, nodes)
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				if err := n.Put(ctx, []byte("contended"), fmt.Appendf(nil, "node%d-%d", i, j)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, 30*time.Second, "one value everywhere", func() error {
		first, err := nodes[0].Get(ctx, []byte("contended"))
		if err != nil {
			return err
		}
		for _, n := range nodes[1:] {
			v, err := n.Get(ctx, []byte("contended"))
			if err != nil || !bytes.Equal(v, first) {
				return fmt.Errorf("%q vs %q (%v)", v, first, err)
			}
		}
		return nil
	})
}

func TestCountersAndSetsConverge(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 3, nil)
	chain(t, nodes)
	for i, n := range nodes {
		for range 10 {
			if _, err := n.Incr(ctx, []byte("c"), int64(i+1)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := n.Incr(ctx, []byte("c"), -1); err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			if err := n.SAdd(ctx, []byte("s"), fmt.Appendf(nil, "m%d-%d", i, j)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Remove one member on the node that added it, after everyone saw it.
	waitFor(t, 20*time.Second, "all adds seen", func() error {
		for _, n := range nodes {
			if m, err := n.SMembers(ctx, []byte("s")); err != nil || len(m) != 9 {
				return fmt.Errorf("%d members, %v", len(m), err)
			}
		}
		return nil
	})
	if err := nodes[2].SRem(ctx, []byte("s"), []byte("m0-0")); err != nil {
		t.Fatal(err)
	}
	want := int64(10*(1+2+3) - 3)
	waitFor(t, 20*time.Second, "counter and set totals", func() error {
		for i, n := range nodes {
			c, err := n.Counter(ctx, []byte("c"))
			if err != nil || c != want {
				return fmt.Errorf("node %d counter %d, want %d (%v)", i, c, want, err)
			}
			m, err := n.SMembers(ctx, []byte("s"))
			if err != nil || len(m) != 8 {
				return fmt.Errorf("node %d has %d members, want 8 (%v)", i, len(m), err)
			}
			for _, x := range m {
				if string(x) == "m0-0" {
					return fmt.Errorf("node %d still has the removed member", i)
				}
			}
		}
		return nil
	})
}

func TestWatchSeesRemoteChanges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nodes := startNodes(t, 2, nil)
	link(t, nodes[0], nodes[1])
	events, err := nodes[1].Watch(ctx, []byte("w/"))
	if err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].Put(ctx, []byte("other"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].Put(ctx, []byte("w/1"), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if string(ev.Key) != "w/1" || string(ev.Value) != "hello" || !ev.Remote || ev.Kind != KindRegister {
			t.Fatalf("unexpected event %+v", ev)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no watch event for a remote write within 20 s")
	}
}

func TestBadInputIsRefused(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.MaxValueBytes = 64
	n := startNode(t, cfg)
	cases := []struct {
		name string
		err  error
		call func() error
	}{
		{"empty key", ErrInvalidKey, func() error { return n.Put(ctx, nil, []byte("v")) }},
		{"oversized key", ErrKeyTooLarge, func() error { return n.Put(ctx, make([]byte, 1025), []byte("v")) }},
		{"oversized value", ErrValueTooLarge, func() error { return n.Put(ctx, []byte("k"), make([]byte, 65)) }},
		{"oversized member", ErrValueTooLarge, func() error { return n.SAdd(ctx, []byte("s"), make([]byte, 65)) }},
		{"absent key", ErrNotFound, func() error { _, err := n.Get(ctx, []byte("nope")); return err }},
		{"wrong kind", ErrWrongKind, func() error {
			if err := n.Put(ctx, []byte("reg"), []byte("v")); err != nil {
				return err
			}
			_, err := n.Incr(ctx, []byte("reg"), 1)
			return err
		}},
	}
	for _, c := range cases {
		if err := c.call(); !errors.Is(err, c.err) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.err)
		}
	}
	// The node still serves after refusing all of that.
	if err := n.Put(ctx, []byte("k"), []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Get(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteThenGetIsNotFoundEverywhere(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 2, nil)
	link(t, nodes[0], nodes[1])
	if err := nodes[0].Put(ctx, []byte("gone"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "replicated", func() error { _, err := nodes[1].Get(ctx, []byte("gone")); return err })
	if err := nodes[1].Delete(ctx, []byte("gone")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "delete replicated", func() error {
		if _, err := nodes[0].Get(ctx, []byte("gone")); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
	for k, err := range nodes[0].Keys(ctx, nil) {
		if err != nil || string(k) == "gone" {
			t.Fatalf("Keys lists a deleted key: %q %v", k, err)
		}
	}
}

// Peers that differ in mesh name, partition count or replication factor
// would disagree on topics and placement; each refuses the other.
func TestPeerOfAnotherMeshIsRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Config)
		log  string // in a's refusal
	}{
		{"name", func(c *Config) { c.Mesh = "other" }, `their_mesh=other`},
		{"partitions", func(c *Config) { c.Partitions = 8 }, `their_partitions=8`},
		{"replication", func(c *Config) { c.Replication = 2 }, `their_replication=2 our_mesh=default our_partitions=16 our_replication=0`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var log syncBuffer
			cfgA := testConfig()
			cfgA.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))
			cfgB := testConfig()
			c.edit(&cfgB)
			testPeerIsRefused(t, startNode(t, cfgA), startNode(t, cfgB))
			waitFor(t, 5*time.Second, "refusal logged", func() error {
				if got := log.String(); !strings.Contains(got, "refusing peer from another mesh") || !strings.Contains(got, c.log) {
					return fmt.Errorf("log lacks %q:\n%s", c.log, got)
				}
				return nil
			})
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testPeerIsRefused(t *testing.T, a, b *Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Connect(ctx, a.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	// Both sides start a session on connect; each must refuse the other.
	waitFor(t, 10*time.Second, "both sides refuse", func() error {
		if !a.members.isForeign(b.ID()) || !b.members.isForeign(a.ID()) {
			return errors.New("not yet refused")
		}
		return nil
	})
	if len(a.Peers()) != 0 || len(b.Peers()) != 0 {
		t.Fatalf("peers of another mesh were counted as members")
	}
	// A session forced through anyway fails with the specific error.
	if err := b.Connect(ctx, a.Addrs()[0]); err == nil {
		if err := b.SyncWith(ctx, a.ID()); err != nil && !errors.Is(err, ErrMeshMismatch) && !isStreamClosed(err) {
			t.Fatalf("sync across meshes: got %v, want ErrMeshMismatch", err)
		}
	}
	// Both still serve.
	if err := a.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
}

// isStreamClosed reports errors of a connection the other side already
// closed because it refused us first.
func isStreamClosed(err error) bool {
	return err != nil && !errors.Is(err, ErrMeshMismatch)
}

func TestConfigValidation(t *testing.T) {
	for _, edit := range []func(*Config){
		func(c *Config) { c.Mesh = "" },
		func(c *Config) { c.Partitions = 0 },
		func(c *Config) { c.SyncInterval = 0 },
		func(c *Config) { c.SyncJitter = 2 },
		func(c *Config) { c.MaxKeyBytes = 0 },
	} {
		cfg := testConfig()
		edit(&cfg)
		if _, err := New(context.Background(), cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("got %v, want ErrInvalidConfig", err)
		}
	}
}

// Stats count gossip bytes as well as anti-entropy bytes, per protocol.
func TestStatsCountGossipBytes(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 2, nil)
	link(t, nodes[0], nodes[1])
	waitFor(t, 20*time.Second, "a write gossiped", func() error {
		if err := nodes[0].Put(ctx, []byte("g"), []byte("value")); err != nil {
			return err
		}
		for proto, b := range nodes[0].Stats().BytesSent {
			if strings.HasPrefix(proto, "/meshsub/") && b > 0 {
				return nil
			}
		}
		return fmt.Errorf("no gossip bytes counted: %v", nodes[0].Stats().BytesSent)
	})
}
