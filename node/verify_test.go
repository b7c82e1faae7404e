package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/gossipmesh/gossipmesh/sync/merkle"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// honestWriter puts keys on n until stop is closed and records each put's
// latency; the keys it got acknowledged are returned by wait.
type honestWriter struct {
	done  chan struct{}
	acked map[string]string
	lat   []time.Duration
	err   error
}

func startHonestWriter(n *Node, prefix string, stop <-chan struct{}) *honestWriter {
	w := &honestWriter{done: make(chan struct{}), acked: map[string]string{}}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			k, v := fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("v%d", i)
			start := time.Now()
			if err := n.Put(context.Background(), []byte(k), []byte(v)); err != nil {
				w.err = err
				return
			}
			w.lat = append(w.lat, time.Since(start))
			w.acked[k] = v
		}
	}()
	return w
}

// wait returns the acknowledged keys and the p99 put latency.
func (w *honestWriter) wait(t testing.TB) (map[string]string, time.Duration) {
	t.Helper()
	<-w.done
	if w.err != nil {
		t.Fatalf("honest put failed: %v", w.err)
	}
	if len(w.lat) == 0 {
		t.Fatal("no honest put completed")
	}
	sort.Slice(w.lat, func(i, j int) bool { return w.lat[i] < w.lat[j] })
	return w.acked, w.lat[len(w.lat)*99/100]
}

// honestP99Limit is the put latency an honest client must keep during an
// attack: 50 ms, and ten times that under the race detector.
func honestP99Limit() time.Duration {
	if raceDetector {
		return 500 * time.Millisecond
	}
	return 50 * time.Millisecond
}

// heldRoots is every partition's root as its holders report it: what
// anyone can read from heartbeats.
func heldRoots(t testing.TB, nodes []*Node) []partitionRoot {
	t.Helper()
	var roots []partitionRoot
	for _, n := range nodes {
		st, err := n.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, ps := range st.Partitions {
			if ps.Held {
				roots = append(roots, partitionRoot{ps.Partition, ps.Root})
			}
		}
	}
	return roots
}

// attackerTopic runs GossipSub on h with flood publishing (every message
// goes straight to every peer on the topic), joins the named topic,
// subscribes so the attacker is seen on it, and dials each node.
func attackerTopic(t testing.TB, h host.Host, name string, nodes ...*Node) *pubsub.Topic {
	t.Helper()
	ps, err := pubsub.NewGossipSub(context.Background(), h, pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(name)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Cancel)
	for _, n := range nodes {
		if err := dial(h, n); err != nil {
			t.Fatal(err)
		}
	}
	return topic
}

// ghostHost is a host nobody can dial (it listens nowhere), connected to
// relay only, publishing on the membership topic as itself.
func ghostHost(t testing.TB, relay host.Host, topic string) *pubsub.Topic {
	t.Helper()
	h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ps, err := pubsub.NewGossipSub(context.Background(), h, pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := ps.Join(topic)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Connect(ctx, peer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return tp
}

// Ghost members: identities that were never on the mesh, whose heartbeats a
// member relays, copying the real holders' roots. They must not become
// members, so placement never hands partitions to them and no real holder
// drops what it holds.
func TestRelayedGhostHeartbeatsMakeNoMembers(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 3, shardedConfig(1, 16))
	link(t, nodes[0], nodes[1])
	link(t, nodes[1], nodes[2])
	link(t, nodes[0], nodes[2])
	waitFor(t, 30*time.Second, "placement settled", placementSettled(t, nodes, 1))
	acked := writeKeys(t, nodes[0], "before", 64)
	waitFor(t, 30*time.Second, "placement settled with data", placementSettled(t, nodes, 1))

	// The relay is a member in every way but this: it runs GossipSub on
	// the membership topic and forwards what the ghosts publish.
	relay := attackerHost(t)
	attackerTopic(t, relay, nodes[0].membersTopic(), nodes...)
	const ghosts = 30
	topics := make([]*pubsub.Topic, ghosts)
	for i := range topics {
		topics[i] = ghostHost(t, relay, nodes[0].membersTopic())
	}
	// Every partition's real root, as anyone reads it from heartbeats.
	roots := heldRoots(t, nodes)
	hb := appendHeartbeat(nil, heartbeat{mesh: nodes[0].meshID, incarnation: uint64(time.Now().UnixNano()), roots: roots})

	stop := make(chan struct{})
	writer := startHonestWriter(nodes[1], "during", stop)
	// Long enough for a ghost heard at once to take partitions over and
	// for the old holders to see "their" roots: membership ticks every
	// 150 ms, a member is dead after 1.5 s.
	attackEnd := time.Now().Add(4 * time.Second)
	published := 0
	pace := time.NewTicker(100 * time.Millisecond) // the attacker's pace
	defer pace.Stop()
	for ; time.Now().Before(attackEnd); <-pace.C {
		for _, tp := range topics {
			if err := tp.Publish(ctx, hb); err != nil {
				t.Fatal(err)
			}
			published++
		}
		for i, n := range nodes {
			if got := len(n.members.list()); got > len(nodes) {
				t.Errorf("node %d lists %d members during the attack, want at most %d", i, got, len(nodes))
			}
		}
	}
	close(stop)
	during, p99 := writer.wait(t)
	for k, v := range during {
		acked[k] = v
	}

	for i, n := range nodes {
		ids := n.members.list()
		if len(ids) != len(nodes)-1 {
			t.Errorf("node %d lists %d members after the attack, want %d", i, len(ids), len(nodes)-1)
		}
		if c := n.members.candidates(); c > maxCandidates {
			t.Errorf("node %d holds %d unverified candidates, limit %d", i, c, maxCandidates)
		}
	}
	waitFor(t, 30*time.Second, "placement among the real members only", placementSettled(t, nodes, 1))
	for i, n := range nodes {
		if err := hasAll(ctx, n, acked); err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
	t.Logf("%d ghost heartbeats published; %d honest puts during the attack, p99 %v", published, len(during), p99)
	if limit := honestP99Limit(); p99 > limit {
		t.Errorf("honest put p99 %v during the attack, want under %v", p99, limit)
	}
}

// A sync hello alone makes no member: sybils that only say hello must not
// stretch the node's heartbeat interval (its peers would declare it dead)
// nor enter placement.
func TestHelloAloneMakesNoMember(t *testing.T) {
	nodes := startNodes(t, 2, shardedConfig(1, 16))
	a, b := nodes[0], nodes[1]
	link(t, a, b)
	waitFor(t, 30*time.Second, "placement settled", placementSettled(t, nodes, 1))

	const sybils = 40
	for range sybils {
		h := attackerHost(t)
		if err := dial(h, a); err != nil {
			t.Fatal(err)
		}
		if err := sayHello(h, a); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the handshake recorded", func() error {
			if !a.members.isVerified(h.ID()) {
				return errors.New("not yet")
			}
			return nil
		})
	}
	if got := len(a.members.list()); got != 1 {
		t.Errorf("after %d sybil hellos the node lists %d members, want 1", sybils, got)
	}
	if s := a.heartbeatScale(); s != 1 {
		t.Errorf("heartbeat interval stretched %d times by sybil hellos", s)
	}
	if !slices.Equal(a.place().members, b.place().members) {
		t.Errorf("placement members differ: %v and %v", a.place().members, b.place().members)
	}
}

// sayHello opens a sync stream from h to n and exchanges hellos as a member
// of n's mesh would, then leaves.
func sayHello(h host.Host, n *Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := h.NewStream(ctx, n.ID(), syncProtocol)
	if err != nil {
		return err
	}
	defer s.Close()
	f, err := newFramer(s, n.syncConfig().MaxFrameBytes, n.cfg.CompressAbove)
	if err != nil {
		return err
	}
	defer f.close()
	ours := hello{mesh: n.meshID, partitions: n.cfg.Partitions, replication: n.cfg.Replication, name: n.cfg.Mesh,
		roots: make([]merkle.Hash, n.cfg.Partitions)}
	ours.stores = make([]byte, bitmapLen(n.cfg.Partitions))
	ours.fresh = make([]byte, len(ours.stores))
	if err := f.write(appendHello(nil, ours)); err != nil {
		return err
	}
	b, err := f.read()
	if err != nil {
		return err
	}
	if _, err := decodeHello(b); err != nil {
		return err
	}
	return nil
}

// A member that lies about its roots: it passed the handshake, so it is a
// member and placement gives it partitions, and its heartbeats claim the
// real roots of all of them, but it never completes a session. The old
// holders must keep their data: a holder's claim counts only from the
// hello of a completed session. Once the liar is gone, nothing
// acknowledged is missing.
func TestHeartbeatRootsAreNoHandoverProof(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 3, shardedConfig(1, 16))
	link(t, nodes[0], nodes[1])
	link(t, nodes[1], nodes[2])
	link(t, nodes[0], nodes[2])
	acked := writeKeys(t, nodes[0], "before", 64)
	waitFor(t, 30*time.Second, "placement settled with data", placementSettled(t, nodes, 1))
	roots := heldRoots(t, nodes)

	liar := attackerHost(t)
	topic := attackerTopic(t, liar, nodes[0].membersTopic(), nodes...)
	for _, n := range nodes {
		if err := sayHello(liar, n); err != nil {
			t.Fatal(err)
		}
	}
	hb := appendHeartbeat(nil, heartbeat{mesh: nodes[0].meshID, incarnation: uint64(time.Now().UnixNano()), roots: roots})
	pace := time.NewTicker(100 * time.Millisecond) // the attacker's pace
	defer pace.Stop()
	waitFor(t, 10*time.Second, "the liar is a member everywhere", func() error {
		if err := topic.Publish(ctx, hb); err != nil {
			return err
		}
		for i, n := range nodes {
			if !slices.Contains(n.members.list(), liar.ID()) {
				return fmt.Errorf("node %d does not list it", i)
			}
		}
		return nil
	})
	// Long enough for the old holders to act on the lie: membership ticks
	// every 150 ms.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); <-pace.C {
		if err := topic.Publish(ctx, hb); err != nil {
			t.Fatal(err)
		}
	}
	liar.Close()
	waitFor(t, 30*time.Second, "placement among the honest nodes", placementSettled(t, nodes, 1))
	for i, n := range nodes {
		if err := hasAll(ctx, n, acked); err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
}

// Peers that are not members get a bounded share of the inbound sessions:
// sybils that say hello and stall cannot hold every slot, and a member's
// sessions go on.
func TestNewcomersCannotHoldEverySyncSlot(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	link(t, a, b)
	waitFor(t, 10*time.Second, "b is a member of a", func() error {
		if !a.members.isLive(b.ID()) {
			return errors.New("not yet")
		}
		return nil
	})
	const sybils, each = 40, 2
	opened := 0
	for range sybils {
		h := attackerHost(t)
		if err := dial(h, a); err != nil {
			t.Fatal(err)
		}
		for range each {
			s, err := h.NewStream(ctx, a.ID(), syncProtocol)
			if err != nil {
				continue
			}
			t.Cleanup(func() { s.Reset() })
			f, err := newFramer(s, a.syncConfig().MaxFrameBytes, 0)
			if err != nil {
				t.Fatal(err)
			}
			ours := hello{mesh: a.meshID, partitions: a.cfg.Partitions, name: a.cfg.Mesh, roots: make([]merkle.Hash, a.cfg.Partitions)}
			ours.stores = make([]byte, bitmapLen(a.cfg.Partitions))
			ours.fresh = make([]byte, len(ours.stores))
			if f.write(appendHello(nil, ours)) == nil {
				if _, err := f.read(); err == nil {
					opened++ // and now it stalls
				}
			}
		}
	}
	refused := a.SecurityStats().SyncRefused
	t.Logf("%d stalled sessions held, %d refused", opened, refused)
	if opened > newcomerSessions {
		t.Errorf("%d stalled newcomer sessions held, cap %d", opened, newcomerSessions)
	}
	if refused == 0 {
		t.Error("no newcomer session refused")
	}
	acked := writeKeys(t, a, "k", 20)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.SyncWith(sctx, a.ID()); err != nil {
		t.Fatalf("a member's session during the flood: %v", err)
	}
	if err := hasAll(ctx, b, acked); err != nil {
		t.Fatal(err)
	}
}

// Members are tagged for the connection manager, so it trims sybils'
// connections first.
func TestMembersAreSparedByTheConnectionManager(t *testing.T) {
	nodes := startNodes(t, 2, shardedConfig(0, 16))
	a, b := nodes[0], nodes[1]
	link(t, a, b)
	tagged := func() error {
		if info := a.Host().ConnManager().GetTagInfo(b.ID()); info == nil || info.Tags[memberTag] != memberTagValue {
			return errors.New("b is not tagged as a member")
		}
		return nil
	}
	waitFor(t, 10*time.Second, "b tagged", tagged)
}
