package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func shardedConfig(r, partitions int) func(*Config) {
	return func(c *Config) {
		c.Replication = r
		c.Partitions = partitions
		c.HeartbeatInterval = 150 * time.Millisecond
		c.SuspectAfter = 500 * time.Millisecond
		c.DeadAfter = 1500 * time.Millisecond
		c.SyncInterval = 250 * time.Millisecond
		c.SyncTimeout = 3 * time.Second
	}
}

// meshLinks connects every new node to a few earlier ones.
func meshLinks(t testing.TB, nodes []*Node, from int, rng *rand.Rand) {
	for i := max(from, 1); i < len(nodes); i++ {
		for _, j := range rng.Perm(i)[:min(i, 3)] {
			link(t, nodes[j], nodes[i])
		}
	}
}

// placementSettled checks that every node sees the same members, computes
// the same placement with exactly r holders per partition, stores data only
// for partitions it holds, and that each partition's holders agree on its
// root.
func placementSettled(t testing.TB, nodes []*Node, r int) func() error {
	return func() error {
		ids := make([]peer.ID, len(nodes))
		for i, n := range nodes {
			ids[i] = n.ID()
		}
		slices.Sort(ids)
		ref := nodes[0].place()
		for i, n := range nodes {
			pl := n.place()
			if !slices.Equal(pl.members, ids) {
				return fmt.Errorf("node %d sees %d members, want %d: %s", i, len(pl.members), len(ids), memberDiff(n, pl.members, ids))
			}
			for p := range pl.holders {
				if len(pl.holders[p]) != r {
					return fmt.Errorf("partition %d has %d holders", p, len(pl.holders[p]))
				}
				if !slices.Equal(pl.holders[p], ref.holders[p]) {
					return fmt.Errorf("node %d disagrees on partition %d", i, p)
				}
			}
			st, err := n.Status(context.Background())
			if err != nil {
				return err
			}
			for _, ps := range st.Partitions {
				if !ps.Held && ps.Keys > 0 {
					return fmt.Errorf("node %d still stores %d keys of partition %d it does not hold", i, ps.Keys, ps.Partition)
				}
				if ps.Held && !ps.HoldersAgree {
					return fmt.Errorf("holders of partition %d disagree on its root", ps.Partition)
				}
			}
		}
		return nil
	}
}

func TestShardedPlacementHoldsExactlyR(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	nodes := startNodes(t, 10, shardedConfig(3, 64))
	meshLinks(t, nodes, 0, rng)
	waitFor(t, 30*time.Second, "placement settled", placementSettled(t, nodes, 3))
	for p := range 64 {
		count := 0
		for _, n := range nodes {
			if n.holds(uint32(p)) {
				count++
			}
		}
		if count != 3 {
			t.Fatalf("partition %d held by %d nodes, want 3", p, count)
		}
	}
}

func TestShardedMembershipChangesLoseNothing(t *testing.T) {
	if raceDetector {
		// Fifteen nodes with 1.5 s failure detection: under the race
		// detector on a small machine heartbeats arrive late enough to
		// declare live members dead. The plain suite runs it.
		t.Skip("membership timing too tight under the race detector")
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	ctx := context.Background()
	edit := shardedConfig(3, 32)
	nodes := startNodes(t, 10, edit)
	meshLinks(t, nodes, 0, rng)
	waitFor(t, 30*time.Second, "initial placement", placementSettled(t, nodes, 3))

	want := map[string]string{}
	write := func(phase string, count int) {
		for i := range count {
			k, v := fmt.Sprintf("%s/%03d", phase, i), fmt.Sprintf("%s-value-%d", phase, i)
			n := nodes[rng.IntN(len(nodes))]
			if err := n.Put(ctx, []byte(k), []byte(v)); err != nil {
				t.Fatalf("put %s on %s: %v", k, n.ID(), err)
			}
			want[k] = v
		}
	}
	write("before", 150)
	for range 5 {
		cfg := testConfig()
		edit(&cfg)
		nodes = append(nodes, startNode(t, cfg))
	}
	meshLinks(t, nodes, 10, rng)
	joined := time.Now()
	write("during-join", 100)
	waitFor(t, 30*time.Second, "the joins known to all", func() error {
		for i, n := range nodes {
			if got := len(n.place().members); got != len(nodes) {
				return fmt.Errorf("node %d places %d members", i, got)
			}
		}
		return nil
	})
	known := time.Now()
	waitFor(t, 60*time.Second, "placement after 5 joins", placementSettled(t, nodes, 3))
	t.Logf("5 joins: every node placed them %v after the last join (100 writes in between); placement and roots settled %v after that",
		known.Sub(joined).Round(time.Millisecond), time.Since(known).Round(time.Millisecond))
	// Remove three, one at a time: two closed, one crashed with its writes
	// in flight. Each removal waits for re-replication, as an operator would.
	for round := range 3 {
		victim := rng.IntN(len(nodes))
		if round == 2 {
			go nodes[victim].Put(ctx, []byte("crash/in-flight"), []byte("unacked"))
		}
		gone := nodes[victim].ID()
		nodes[victim].Close()
		closed := time.Now()
		nodes = slices.Delete(nodes, victim, victim+1)
		write(fmt.Sprintf("during-leave-%d", round), 30)
		waitFor(t, 30*time.Second, "the removal detected", func() error {
			for i, n := range nodes {
				if slices.Contains(n.place().members, gone) {
					return fmt.Errorf("node %d still places %s", i, gone.ShortString())
				}
			}
			return nil
		})
		detected := time.Now()
		waitFor(t, 60*time.Second, "placement after a removal", placementSettled(t, nodes, 3))
		t.Logf("removal %d: every node declared it dead %v after it stopped; placement and roots settled %v after that",
			round, detected.Sub(closed).Round(time.Millisecond), time.Since(detected).Round(time.Millisecond))
	}
	write("after", 50)
	waitFor(t, 60*time.Second, "final placement", placementSettled(t, nodes, 3))
	for i, n := range nodes {
		waitFor(t, 30*time.Second, fmt.Sprintf("node %d reads every key", i), func() error { return hasAll(ctx, n, want) })
	}
	// Exactly R copies of each key's state across the mesh.
	for k := range want {
		p := partitionOf([]byte(k), 32)
		copies := 0
		for _, n := range nodes {
			if b, _ := loadState(ctx, n.store, []byte(k)); b != nil {
				copies++
				if !n.holds(p) {
					t.Fatalf("%s stored on a non-holder", k)
				}
			}
		}
		if copies != 3 {
			t.Fatalf("%s has %d copies, want 3", k, copies)
		}
	}
}

func TestWriteThroughNonHolderSurvivesItsCrash(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	ctx := context.Background()
	edit := shardedConfig(1, 16)
	nodes := startNodes(t, 3, edit)
	store := dssync.MutexWrap(ds.NewMapDatastore())
	withStore := func(c *Config) { edit(c); c.Datastore = store }
	cfg := testConfig()
	withStore(&cfg)
	writer := startNode(t, cfg)
	nodes = append(nodes, writer)
	meshLinks(t, nodes, 0, rng)
	waitFor(t, 30*time.Second, "placement", placementSettled(t, nodes, 1))
	// A key whose partition the writer does not hold.
	var key []byte
	for i := 0; ; i++ {
		key = fmt.Appendf(nil, "k%d", i)
		if !writer.holds(partitionOf(key, 16)) {
			break
		}
	}
	if err := writer.Put(ctx, key, []byte("acked")); err != nil {
		t.Fatal(err)
	}
	writer.Close() // crash right after the acknowledgement
	cfg = testConfig()
	withStore(&cfg)
	cfg.Identity = nil
	restarted := startNode(t, cfg)
	link(t, nodes[0], restarted)
	waitFor(t, 30*time.Second, "the write reached its holder", func() error {
		for _, n := range nodes[:3] {
			if v, err := n.Get(ctx, key); err == nil && string(v) == "acked" {
				return nil
			} else if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrUnavailable) {
				return err
			}
		}
		return errors.New("not yet")
	})
}

// memberDiff says which members a node's placement has wrong, and how long
// ago it last heard each, to tell a stale view from a flapping one.
func memberDiff(n *Node, got, want []peer.ID) string {
	now := n.cfg.Now()
	var out []string
	n.members.mu.Lock()
	defer n.members.mu.Unlock()
	age := func(id peer.ID) string {
		if mb, ok := n.members.live[id]; ok {
			return fmt.Sprintf("heard %v ago", now.Sub(mb.lastSeen).Round(time.Millisecond))
		}
		return "not live"
	}
	for _, id := range got {
		if !slices.Contains(want, id) {
			out = append(out, fmt.Sprintf("extra %s (%s)", id.ShortString(), age(id)))
		}
	}
	for _, id := range want {
		if !slices.Contains(got, id) {
			out = append(out, fmt.Sprintf("missing %s (%s)", id.ShortString(), age(id)))
		}
	}
	return strings.Join(out, ", ")
}

// A restarted node must not base a counter increment on its own store alone:
// its earlier increments went to a holder as hints and were dropped here, and
// an increment from a forgotten base would sink under them in the merge.
func TestCounterThroughRestartedNonHolderKeepsEveryIncrement(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	ctx := context.Background()
	edit := shardedConfig(1, 16)
	nodes := startNodes(t, 3, edit)
	store := dssync.MutexWrap(ds.NewMapDatastore())
	identity, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	writerConfig := func() Config {
		c := testConfig()
		edit(&c)
		c.Datastore, c.Identity = store, identity
		return c
	}
	writer := startNode(t, writerConfig())
	all := append(slices.Clone(nodes), writer)
	meshLinks(t, all, 0, rng)
	waitFor(t, 30*time.Second, "placement", placementSettled(t, all, 1))
	var key []byte
	for i := 0; ; i++ {
		key = fmt.Appendf(nil, "c%d", i)
		if !writer.holds(partitionOf(key, 16)) {
			break
		}
	}
	incr := func(n *Node) func() error {
		return func() error {
			_, err := n.Incr(ctx, key, 1)
			if errors.Is(err, ErrUnavailable) {
				return err // still learning the members after start
			}
			if err != nil {
				t.Fatal(err)
			}
			return nil
		}
	}
	for range 5 {
		waitFor(t, 30*time.Second, "an increment", incr(writer))
	}
	holderHas := func(want int64) func() error {
		return func() error {
			for _, n := range nodes {
				if n.holds(partitionOf(key, 16)) {
					if v, err := n.Counter(ctx, key); err != nil || v != want {
						return fmt.Errorf("holder reads %d (%v), want %d", v, err, want)
					}
				}
			}
			return nil
		}
	}
	waitFor(t, 30*time.Second, "the increments handed off", holderHas(5))
	waitFor(t, 30*time.Second, "the hint dropped", func() error {
		if b, _ := loadRaw(ctx, store, hintKey(key)); b != nil {
			return errors.New("hint still stored")
		}
		return nil
	})
	writer.Close()
	restarted := startNode(t, writerConfig())
	link(t, nodes[0], restarted)
	waitFor(t, 30*time.Second, "an increment through the restarted node", incr(restarted))
	waitFor(t, 30*time.Second, "all six increments at the holder", holderHas(6))
}
