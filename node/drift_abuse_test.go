package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
)

// Issue 19, hole 1: a well-formed envelope stamped now whose inner register
// is stamped far ahead would pin its key for ever. Driven as the attacker
// did, against three nodes with an honest client writing the same key
// throughout: the envelopes are refused and count against the sender, and
// every honest write of the key is the one read afterwards on every node,
// as is every other acknowledged write; a node that joins afterwards
// catches up in full.
func TestFutureInnerStampCannotPinAKey(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 3, nil)
	chain(t, nodes)
	evil := attackerHost(t)
	key := []byte("pinned")
	a := nodes[0]
	p := a.deltaTopic(partitionOf(key, a.cfg.Partitions))
	topic := attackerTopic(t, evil, a.topicName(p), nodes...)
	waitFor(t, 5*time.Second, "attacker on the topic with the nodes", func() error {
		if len(topic.ListPeers()) < len(nodes) {
			return errors.New("not yet")
		}
		return nil
	})
	far := &crdt.LWW{}
	far.Set([]byte("from 2100"), crdt.Timestamp{Wall: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(), Node: 7})
	bad := appendEnvelope(nil, envelope{mesh: a.meshID, part: p, records: []deltaRecord{{
		key: key, stamp: crdt.Timestamp{Wall: time.Now().UnixNano(), Node: 7}, state: crdt.Encode(far)}}})

	acked := writeKeys(t, nodes[1], "other", 50)
	var lat []time.Duration
	last := ""
	pace := time.NewTicker(20 * time.Millisecond) // the attacker's pace
	defer pace.Stop()
	for i := 0; i < 100; i, _ = i+1, <-pace.C {
		_ = topic.Publish(ctx, bad) // fails once the attacker is cut off
		last = fmt.Sprintf("honest %d", i)
		start := time.Now()
		if err := nodes[i%len(nodes)].Put(ctx, key, []byte(last)); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	if a.Stats().DeltasInvalid+nodes[1].Stats().DeltasInvalid+nodes[2].Stats().DeltasInvalid == 0 {
		t.Error("no envelope refused")
	}
	waitFor(t, 20*time.Second, "the last honest write read everywhere", func() error {
		for i, n := range nodes {
			if v, err := n.Get(ctx, key); err != nil || string(v) != last {
				return fmt.Errorf("node %d reads %q, %v; want %q", i, v, err, last)
			}
		}
		return nil
	})
	late := startNode(t, testConfig())
	link(t, nodes[2], late)
	acked[string(key)] = last
	for i, n := range append(nodes, late) {
		waitFor(t, 20*time.Second, fmt.Sprintf("node %d has every acknowledged write", i), func() error { return hasAll(ctx, n, acked) })
	}
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	t.Logf("honest put p99 %v during the attack; %d peers blocked", p99, a.SecurityStats().PeersBlocked+nodes[1].SecurityStats().PeersBlocked+nodes[2].SecurityStats().PeersBlocked)
	if limit := honestP99Limit(); p99 > limit {
		t.Errorf("honest put p99 %v during the attack, want under %v", p99, limit)
	}
}
