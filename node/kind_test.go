package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// storedState returns the state of key in n's store, or nil.
func storedState(t testing.TB, n *Node, key []byte) crdt.State {
	t.Helper()
	b, err := loadState(context.Background(), n.store, key)
	if err != nil {
		t.Fatal(err)
	}
	if b == nil {
		return nil
	}
	s, err := crdt.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// everyNode waits until cond holds on every node.
func everyNode(t testing.TB, nodes []*Node, what string, cond func(n *Node) error) {
	t.Helper()
	waitFor(t, 15*time.Second, what, func() error {
		for i, n := range nodes {
			if err := cond(n); err != nil {
				return fmt.Errorf("node %d: %w", i, err)
			}
		}
		return nil
	})
}

func reads(key []byte, want string) func(n *Node) error {
	return func(n *Node) error {
		v, err := n.Get(context.Background(), key)
		if err != nil || string(v) != want {
			return fmt.Errorf("%q = %q, %v; want %q", key, v, err, want)
		}
		return nil
	}
}

func counts(key []byte, want int64) func(n *Node) error {
	return func(n *Node) error {
		v, err := n.Counter(context.Background(), key)
		if err != nil || v != want {
			return fmt.Errorf("counter %q = %d, %v; want %d", key, v, err, want)
		}
		return nil
	}
}

// kindAttacker is a member holding the swarm key that publishes crafted
// deltas for one key straight on its delta topic.
type kindAttacker struct {
	topic *pubsub.Topic
	env   func(s crdt.State) []byte
	sent  atomic.Int64
}

func newKindAttacker(t *testing.T, swarmKey []byte, target *Node, key []byte) *kindAttacker {
	t.Helper()
	psk, err := loadSwarmKey(&Config{SwarmKey: swarmKey})
	if err != nil {
		t.Fatal(err)
	}
	evil := attackerHost(t, libp2p.PrivateNetwork(psk))
	ps, err := pubsub.NewGossipSub(context.Background(), evil, pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	p := target.deltaTopic(partitionOf(key, target.cfg.Partitions))
	topic, err := ps.Join(target.topicName(p))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Cancel)
	if err := dial(evil, target); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "attacker sees the node on the topic", func() error {
		if !slices.Contains(topic.ListPeers(), target.ID()) {
			return errors.New("not yet")
		}
		return nil
	})
	return &kindAttacker{topic: topic, env: func(s crdt.State) []byte {
		stamp := crdt.Timestamp{Wall: time.Now().UnixNano(), Node: 1}
		return appendEnvelope(nil, envelope{mesh: target.meshID, part: p,
			records: []deltaRecord{{key: key, stamp: stamp, state: crdt.Encode(s)}}})
	}}
}

func (a *kindAttacker) publish(s crdt.State) error {
	a.sent.Add(1)
	return a.topic.Publish(context.Background(), a.env(s))
}

// flood publishes s over and over until the returned stop is called.
func (a *kindAttacker) flood(s crdt.State) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if a.publish(s) != nil {
				return
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// hostileCounter is a counter of one increment at generation gen.
func hostileCounter(t testing.TB, gen crdt.Timestamp) crdt.State {
	s, err := crdt.NewAt(crdt.KindCounter, gen)
	if err != nil {
		t.Fatal(err)
	}
	s.(*crdt.Counter).Add(crdt.NodeID(666), 1)
	return s
}

// A member holding the swarm key gossips a delta that gives a register key
// another kind: a counter at generation zero (its kind outranks the
// register), then one at a generation as far ahead as the drift limit
// lets through, each repeated throughout. Every node merges it alike;
// honest PUT, DELETE and an increment after the DELETE are acknowledged
// and read back on every node while the attacker keeps publishing; nothing
// acknowledged is lost; a generation beyond the drift limit is refused.
func TestHostileKindChangeCannotPinAKey(t *testing.T) {
	ctx := context.Background()
	swarm := GenerateSwarmKey()
	nodes := startNodes(t, 3, func(c *Config) { c.SwarmKey = swarm })
	a, b, c := nodes[0], nodes[1], nodes[2]
	link(t, a, b)
	link(t, b, c)
	victim := []byte("victim")
	acked := writeKeys(t, a, "honest", 10)
	if err := a.Put(ctx, victim, []byte("v0")); err != nil {
		t.Fatal(err)
	}
	everyNode(t, nodes, "victim written", reads(victim, "v0"))
	evil := newKindAttacker(t, swarm, a, victim)

	drift := a.cfg.MaxClockDrift
	var lat []time.Duration
	for round, gen := range []crdt.Timestamp{{}, {Wall: time.Now().Add(drift / 2).UnixNano(), Node: 1}} {
		hostile := hostileCounter(t, gen)
		everyNode(t, nodes, fmt.Sprintf("round %d: hostile counter merged", round), func(n *Node) error {
			if err := evil.publish(hostile); err != nil {
				return err
			}
			if s := storedState(t, n, victim); s == nil || !crdt.Equal(s, hostile) {
				return errors.New("not yet")
			}
			return nil
		})
		// What the attack achieves until an honest write: reads of the
		// register answer "wrong kind" (the 409 of the HTTP API).
		if _, err := b.Get(ctx, victim); !errors.Is(err, ErrWrongKind) {
			t.Fatalf("round %d: Get of the victim under attack: %v", round, err)
		}

		stop := evil.flood(hostile)
		put := func(n *Node, k, v string) {
			start := time.Now()
			if err := n.Put(ctx, []byte(k), []byte(v)); err != nil {
				t.Fatalf("round %d: honest put of %s: %v", round, k, err)
			}
			lat = append(lat, time.Since(start))
			acked[k] = v
		}
		put(b, string(victim), fmt.Sprintf("put %d", round))
		everyNode(t, nodes, "honest put read everywhere", reads(victim, acked[string(victim)]))
		if err := c.Delete(ctx, victim); err != nil {
			t.Fatalf("round %d: honest delete: %v", round, err)
		}
		delete(acked, string(victim))
		everyNode(t, nodes, "honest delete read everywhere", func(n *Node) error {
			if _, err := n.Get(ctx, victim); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("Get after delete: %v", err)
			}
			return nil
		})
		if _, err := a.Incr(ctx, victim, 3); err != nil {
			t.Fatalf("round %d: increment after the delete: %v", round, err)
		}
		everyNode(t, nodes, "honest counter read everywhere", counts(victim, 3))
		for i := range 50 {
			put(nodes[i%3], fmt.Sprintf("during-%d-%d", round, i), "v")
		}
		put(a, string(victim), fmt.Sprintf("final %d", round))
		everyNode(t, nodes, "final put read everywhere", reads(victim, acked[string(victim)]))
		stop()
	}

	// A generation beyond the drift limit is refused, and the victim keeps
	// its honest value.
	far := hostileCounter(t, crdt.Timestamp{Wall: time.Now().Add(2 * drift).UnixNano(), Node: 1})
	if _, err := a.checkDelta(a.deltaTopic(partitionOf(victim, a.cfg.Partitions)), evil.env(far)); !errors.Is(err, crdt.ErrClockDrift) {
		t.Fatalf("far-future generation: %v, want ErrClockDrift", err)
	}
	invalid := a.Stats().DeltasInvalid
	waitFor(t, 5*time.Second, "far-future generation refused", func() error {
		if err := evil.publish(far); err != nil {
			return err
		}
		if a.Stats().DeltasInvalid == invalid {
			return errors.New("not refused yet")
		}
		return nil
	})

	waitFor(t, 15*time.Second, "honest nodes converge", converged(t, nodes))
	for i, n := range nodes {
		if err := hasAll(ctx, n, acked); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	t.Logf("hostile deltas published: %d; honest puts during the attack: %d, p99 %v (target 50 ms)",
		evil.sent.Load(), len(lat), p99(lat))
	if got, limit := p99(lat), honestP99Limit(); got > limit {
		t.Fatalf("put p99 during the attack %v", got)
	}
}

// A counter overwritten by a register write on one node becomes that
// register on every node; increments on the live register are refused,
// and a DELETE lets a counter start again.
func TestCounterOverwrittenByPutConverges(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	link(t, a, b)
	link(t, b, c)
	key := []byte("hits")
	if _, err := a.Incr(ctx, key, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Incr(ctx, key, 2); err != nil {
		t.Fatal(err)
	}
	everyNode(t, nodes, "counter merged", counts(key, 7))

	if err := b.Put(ctx, key, []byte("now a register")); err != nil {
		t.Fatalf("put over a counter: %v", err)
	}
	everyNode(t, nodes, "register everywhere", reads(key, "now a register"))
	waitFor(t, 15*time.Second, "roots agree", converged(t, nodes))
	for i, n := range nodes {
		if _, err := n.Counter(ctx, key); !errors.Is(err, ErrWrongKind) {
			t.Fatalf("node %d: counter read of the register: %v", i, err)
		}
	}
	if _, err := c.Incr(ctx, key, 1); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("increment of a live register: %v", err)
	}
	if err := c.SAdd(ctx, key, []byte("m")); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("set add on a live register: %v", err)
	}
	if err := a.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	everyNode(t, nodes, "deleted everywhere", func(n *Node) error {
		if s := storedState(t, n, key); s == nil || !s.(*crdt.LWW).Deleted() {
			return errors.New("no tombstone yet")
		}
		return nil
	})
	if _, err := c.Incr(ctx, key, 4); err != nil {
		t.Fatalf("increment after the delete: %v", err)
	}
	everyNode(t, nodes, "new counter everywhere", counts(key, 4))
	waitFor(t, 15*time.Second, "roots agree", converged(t, nodes))
}
