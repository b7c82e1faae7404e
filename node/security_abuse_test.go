package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/sync/merkle"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
)

func TestInvalidGossipIsDroppedAndTheSenderBlocked(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 2, func(c *Config) { c.MaxValueBytes = 64 })
	a, b := nodes[0], nodes[1]
	link(t, a, b)
	acked := writeKeys(t, a, "honest", 10)

	// The attacker runs its own GossipSub, with no validator, and publishes
	// crafted envelopes straight on the delta topic (under full
	// replication, the one for all partitions).
	evil := attackerHost(t)
	// Flood publishing sends every message straight to the node, also
	// after the node has pruned the attacker from its GossipSub mesh
	// (which made the test depend on the timing of pubsub's heartbeat).
	ps, err := pubsub.NewGossipSub(ctx, evil, pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("evil")
	p := a.deltaTopic(partitionOf(key, a.cfg.Partitions))
	topic, err := ps.Join(a.topicName(p))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	if err := dial(evil, a); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "attacker sees the node on the topic", func() error {
		if !slices.Contains(topic.ListPeers(), a.ID()) {
			return errors.New("not yet")
		}
		return nil
	})

	now := time.Now()
	stamp := crdt.Timestamp{Wall: now.UnixNano(), Node: 1}
	far := crdt.Timestamp{Wall: now.Add(time.Hour).UnixNano(), Node: 1}
	farState := &crdt.LWW{}
	farState.Set([]byte("from the future"), far)
	env := func(ts crdt.Timestamp, state []byte) []byte {
		return appendEnvelope(nil, envelope{mesh: a.meshID, part: p, records: []deltaRecord{{key: key, stamp: ts, state: state}}})
	}
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"oversized value", env(stamp, bytes.Repeat([]byte("x"), 4000)), ErrBadEnvelope},
		{"far-future timestamp", env(far, crdt.Encode(farState)), crdt.ErrClockDrift},
		{"far-future register in an envelope stamped now", env(stamp, crdt.Encode(farState)), crdt.ErrClockDrift},
		{"malformed state", env(stamp, []byte{0xff, 1, 2, 3}), ErrBadEnvelope},
		{"another mesh", appendEnvelope(nil, envelope{mesh: meshID("x", 16, 0), part: p, records: []deltaRecord{{key: key, stamp: stamp, state: crdt.Encode(farState)}}}), ErrMeshMismatch},
	}
	for _, c := range cases {
		if _, err := a.checkDelta(p, c.data); !errors.Is(err, c.want) {
			t.Errorf("%s: checkDelta gives %v, want %v", c.name, err, c.want)
		}
	}
	// Gossip is best effort: the first messages can go out before the node
	// has taken the attacker in, so each round publishes every case again.
	waitFor(t, 5*time.Second, "invalid deltas counted", func() error {
		for _, c := range cases {
			if err := topic.Publish(ctx, c.data); err != nil {
				return err
			}
		}
		if got := a.Stats().DeltasInvalid; got < uint64(len(cases)) {
			return fmt.Errorf("DeltasInvalid = %d", got)
		}
		return nil
	})
	// An attacker that keeps at it is scored down, disconnected and
	// blocked.
	i := 0
	waitFor(t, 10*time.Second, "attacker blocked", func() error {
		i++
		topic.Publish(ctx, env(stamp, []byte(fmt.Sprintf("junk %d", i))))
		if a.SecurityStats().PeersBlocked == 0 {
			return errors.New("not blocked")
		}
		return nil
	})
	waitFor(t, 5*time.Second, "attacker disconnected", notConnected(a, evil.ID()))
	waitFor(t, 5*time.Second, "attacker scored down", func() error {
		if s, ok := a.PeerScore(evil.ID()); !ok || s >= scoreGossipThreshold {
			return fmt.Errorf("score %v (tracked %v)", s, ok)
		}
		return nil
	})
	if err := dial(evil, a); err == nil {
		waitFor(t, 5*time.Second, "blocked attacker dropped again", notConnected(a, evil.ID()))
	}

	// Honest peers still converge, nothing acknowledged is lost, and
	// nothing of the attack was stored.
	for k, v := range writeKeys(t, b, "after", 10) {
		acked[k] = v
	}
	waitFor(t, 10*time.Second, "honest nodes converge", converged(t, nodes))
	for _, n := range nodes {
		if err := hasAll(ctx, n, acked); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Get(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Fatalf("attacker's key stored: %v", err)
		}
	}
}

// goroutinesBack waits until the goroutine count is within 5 % (and a few)
// of a baseline.
func goroutinesBack(t testing.TB, baseline int) {
	t.Helper()
	waitFor(t, 10*time.Second, "goroutines back to baseline", func() error {
		if now := runtime.NumGoroutine(); now > baseline+baseline/20+5 {
			return fmt.Errorf("%d goroutines, baseline %d", now, baseline)
		}
		return nil
	})
}

func TestThousandStreamsFromOnePeer(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 2, func(c *Config) { c.SyncTimeout = time.Second })
	a, b := nodes[0], nodes[1]
	link(t, a, b)
	acked := writeKeys(t, a, "a", 10)
	evil := attackerHost(t)
	if err := dial(evil, a); err != nil {
		t.Fatal(err)
	}
	baseline := runtime.NumGoroutine()

	var streams []network.Stream
	opened := 0
	for range 1000 {
		s, err := evil.NewStream(ctx, a.ID(), syncProtocol)
		if err != nil {
			continue
		}
		opened++
		// A frame header promising 100 bytes that never come: each
		// stream, if served, would wait for its body.
		s.Write([]byte{100})
		streams = append(streams, s)
	}
	t.Logf("attacker opened %d of 1000 streams", opened)

	// The node keeps serving: writes, and a full session with an honest
	// peer while the flood is held open.
	for k, v := range writeKeys(t, b, "b", 10) {
		acked[k] = v
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := b.SyncWith(sctx, a.ID()); err != nil {
		t.Fatalf("honest sync during the flood: %v", err)
	}
	waitFor(t, 10*time.Second, "converged during the flood", converged(t, nodes))
	sec := a.SecurityStats()
	if sec.SyncRefused == 0 && opened > a.sec.syncs.max {
		t.Fatalf("the per-peer cap refused nothing: %+v", sec)
	}
	for _, s := range streams {
		s.Reset()
	}
	goroutinesBack(t, baseline)
	for _, n := range nodes {
		if err := hasAll(ctx, n, acked); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPeerThatStallsHalfwayThroughASync(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 2, func(c *Config) { c.SyncTimeout = 500 * time.Millisecond })
	a, b := nodes[0], nodes[1]
	link(t, a, b)
	acked := writeKeys(t, a, "a", 10)
	evil := attackerHost(t)
	if err := dial(evil, a); err != nil {
		t.Fatal(err)
	}
	baseline := runtime.NumGoroutine()
	failuresBefore := a.Stats().SyncFailures

	// A valid hello, then silence.
	s, err := evil.NewStream(ctx, a.ID(), syncProtocol)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := newFramer(s, 1<<20, 0)
	defer w.close()
	if err := w.write(appendHello(nil, hello{mesh: a.meshID, partitions: a.cfg.Partitions, replication: a.cfg.Replication, name: a.cfg.Mesh,
		roots: make([]merkle.Hash, a.cfg.Partitions), stores: make([]byte, bitmapLen(a.cfg.Partitions)), fresh: make([]byte, bitmapLen(a.cfg.Partitions))})); err != nil {
		t.Fatal(err)
	}
	if _, err := w.read(); err != nil { // the node's hello: it is in the session
		t.Fatal(err)
	}

	// While it stalls, honest sync works.
	for k, v := range writeKeys(t, b, "b", 10) {
		acked[k] = v
	}
	if err := b.SyncWith(ctx, a.ID()); err != nil {
		t.Fatalf("honest sync during a stalled session: %v", err)
	}

	// The stalled session ends at SyncTimeout: the stream is reset, and
	// nothing of it is left running.
	start := time.Now()
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := w.read(); err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, network.ErrReset) || isStreamClosed(err) {
				break
			}
		}
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Fatalf("stalled session held for %v", waited)
	}
	waitFor(t, 5*time.Second, "session counted as failed", func() error {
		if a.Stats().SyncFailures == failuresBefore {
			return errors.New("not yet")
		}
		return nil
	})
	goroutinesBack(t, baseline)
	if got := a.SecurityStats().PeersBlocked; got != 0 {
		t.Fatalf("a stall is not invalid input, yet %d peers were blocked", got)
	}
	waitFor(t, 10*time.Second, "honest nodes converge", converged(t, nodes))
	for _, n := range nodes {
		if err := hasAll(ctx, n, acked); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConnectDisconnectCycles is the target: after 1,000
// connect/disconnect cycles from an abusive peer the goroutine count is back
// within 5 % of its baseline and honest nodes still converge.
func TestConnectDisconnectCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 handshakes")
	}
	ctx := context.Background()
	nodes := startNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	link(t, a, b)
	acked := writeKeys(t, a, "a", 20)
	evil := attackerHost(t)
	// Warm up once, so lazily started goroutines are in the baseline.
	dial(evil, a)
	evil.Network().ClosePeer(a.ID())
	waitFor(t, 5*time.Second, "disconnected", notConnected(a, evil.ID()))
	baseline := runtime.NumGoroutine()
	start := time.Now()
	for i := range 1000 {
		if err := dial(evil, a); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		evil.Network().ClosePeer(a.ID())
		evil.Peerstore().RemovePeer(a.ID())
	}
	t.Logf("1000 cycles in %v", time.Since(start))
	goroutinesBack(t, baseline)
	for k, v := range writeKeys(t, b, "b", 20) {
		acked[k] = v
	}
	waitFor(t, 10*time.Second, "honest nodes converge", converged(t, nodes))
	for _, n := range nodes {
		if err := hasAll(ctx, n, acked); err != nil {
			t.Fatal(err)
		}
	}
}

// A member that sends invalid handoffs on the kv protocol (a register
// stamped an hour ahead, junk) is refused, counted like invalid gossip,
// and blocked; honest nodes keep converging and nothing of it is stored.
func TestInvalidHandoffBlocksTheSender(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	link(t, a, b)
	acked := writeKeys(t, a, "honest", 10)
	evil := attackerHost(t)
	if err := dial(evil, a); err != nil {
		t.Fatal(err)
	}
	far := &crdt.LWW{}
	far.Set([]byte("from the future"), crdt.Timestamp{Wall: time.Now().Add(time.Hour).UnixNano(), Node: 1})
	key := []byte("evil")
	requests := [][]byte{
		appendKVRequest(nil, a.meshID, kvHandoff, []kvRecord{{key: key, state: crdt.Encode(far)}}),
		appendKVRequest(nil, a.meshID, kvHandoff, []kvRecord{{key: key, state: []byte{0xff, 1, 2}}}),
		appendKVRequest(nil, a.meshID, 99, []kvRecord{{key: key}}),
		{kvGet, 1, 2},
	}
	sendKV := func(req []byte) (byte, error) {
		s, err := evil.NewStream(ctx, a.ID(), kvProtocol)
		if err != nil {
			return 0, err
		}
		defer s.Close()
		f, err := newFramer(s, 1<<20, 0)
		if err != nil {
			return 0, err
		}
		defer f.close()
		if err := f.write(req); err != nil {
			return 0, err
		}
		resp, err := f.read()
		if err != nil || len(resp) == 0 {
			return 0, fmt.Errorf("no answer: %v", err)
		}
		return resp[0], nil
	}
	for i, req := range requests {
		if status, err := sendKV(req); err != nil || status != kvInvalid {
			t.Fatalf("request %d: status %d, %v; want kvInvalid", i, status, err)
		}
	}
	waitFor(t, 10*time.Second, "attacker blocked", func() error {
		sendKV(requests[0])
		if a.SecurityStats().PeersBlocked == 0 {
			return errors.New("not blocked")
		}
		return nil
	})
	waitFor(t, 5*time.Second, "attacker disconnected", notConnected(a, evil.ID()))
	for k, v := range writeKeys(t, b, "after", 10) {
		acked[k] = v
	}
	waitFor(t, 10*time.Second, "honest nodes converge", converged(t, nodes))
	for _, n := range nodes {
		if err := hasAll(ctx, n, acked); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Get(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Fatalf("attacker's key stored: %v", err)
		}
	}
}

// Malformed heartbeats count against their sender like invalid deltas.
func TestInvalidHeartbeatsBlockTheSender(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, testConfig())
	evil := attackerHost(t)
	ps, err := pubsub.NewGossipSub(ctx, evil, pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(a.membersTopic())
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	if err := dial(evil, a); err != nil {
		t.Fatal(err)
	}
	i := 0
	waitFor(t, 10*time.Second, "attacker blocked", func() error {
		i++
		topic.Publish(ctx, fmt.Appendf(nil, "not a heartbeat %d", i))
		if a.SecurityStats().PeersBlocked == 0 {
			return fmt.Errorf("not blocked (%d invalid inputs counted)", a.Stats().DeltasInvalid)
		}
		return nil
	})
	waitFor(t, 5*time.Second, "attacker disconnected", notConnected(a, evil.ID()))
	if err := a.Put(ctx, []byte("still"), []byte("serving")); err != nil {
		t.Fatal(err)
	}
}
