package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// deltaTopicsJoined lists the delta topics n is subscribed to.
func deltaTopicsJoined(n *Node) []string {
	var names []string
	for _, name := range n.ps.GetTopics() {
		if name != n.membersTopic() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Under full replication a node gossips on one topic for every partition,
// and a burst packs deltas of different partitions into one message; under
// placement it keeps a topic per held partition.
func TestFullReplicationGossipsOnOneTopic(t *testing.T) {
	ctx := context.Background()
	// Anti-entropy only at connect: later writes must arrive by gossip.
	nodes := startNodes(t, 2, func(c *Config) { c.SyncInterval = time.Hour })
	a, b := nodes[0], nodes[1]
	for _, n := range nodes {
		if got, want := deltaTopicsJoined(n), []string{n.topicName(mixedPartition)}; !slices.Equal(got, want) {
			t.Fatalf("full replication joined %v, want only %v", got, want)
		}
	}
	placedCfg := testConfig()
	placedCfg.Replication = 2
	placed := startNode(t, placedCfg) // alone, so it holds every partition
	if got := deltaTopicsJoined(placed); len(got) != placedCfg.Partitions || !strings.Contains(got[0], "/p/") {
		t.Fatalf("placement joined %v, want one topic per partition", got)
	}

	b.topicsMu.Lock()
	topic := b.topics[mixedPartition]
	b.topicsMu.Unlock()
	tap, err := topic.Subscribe(pubsub.WithBufferSize(4096))
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Cancel()
	link(t, a, b)
	// GossipSub forwards only to mesh peers, grafted at its next heartbeat:
	// until then a publication reaches no one (anti-entropy repairs it).
	for _, pair := range [][2]*Node{{a, b}, {b, a}} {
		waitFor(t, 10*time.Second, "gossip flows", func() error {
			if err := pair[0].Put(ctx, []byte("probe"), []byte(pair[0].ID())); err != nil {
				return err
			}
			if pair[1].Stats().DeltasIn == 0 {
				return errors.New("no delta received yet")
			}
			return nil
		})
	}
	base := b.Stats().DeltasIn

	// A concurrent burst on a, a few writes on b.
	want := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 32 {
				k, v := fmt.Sprintf("burst-%d-%d", w, i), fmt.Sprintf("v%d", i)
				if err := a.Put(ctx, []byte(k), []byte(v)); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want[k] = v
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for k, v := range writeKeys(t, b, "from-b", 20) {
		want[k] = v
	}
	for _, n := range nodes {
		waitFor(t, 20*time.Second, "every key everywhere", func() error { return hasAll(ctx, n, want) })
	}
	waitFor(t, 10*time.Second, "equal roots", converged(t, nodes))
	if in := b.Stats().DeltasIn - base; in < 8*32 {
		t.Fatalf("b received %d deltas of the burst by gossip, want %d", in, 8*32)
	}

	// Some message of the burst carried keys of several partitions.
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		msg, err := tap.Next(tctx)
		if err != nil {
			t.Fatalf("no message carried more than one partition: %v", err)
		}
		r, ok := msg.ValidatorData.(*received)
		if !ok {
			continue
		}
		parts := map[uint32]bool{}
		for _, rec := range r.records {
			parts[partitionOf(rec.key, b.cfg.Partitions)] = true
		}
		if len(parts) > 1 {
			return
		}
	}
}
