package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// connectedWithout reports whether the connection graph among nodes stays
// connected with the node at index gone left out.
func connectedWithout(nodes []*Node, gone int) error {
	index := map[peer.ID]int{}
	for i, n := range nodes {
		index[n.ID()] = i
	}
	start := (gone + 1) % len(nodes)
	seen := map[int]bool{start: true}
	queue := []int{start}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, id := range nodes[i].Host().Network().Peers() {
			j, ok := index[id]
			if ok && j != gone && !seen[j] && nodes[i].Host().Network().Connectedness(id) == network.Connected {
				seen[j] = true
				queue = append(queue, j)
			}
		}
	}
	if len(seen) != len(nodes)-1 {
		return fmt.Errorf("without node %d, %d of %d nodes are reachable from node %d", gone, len(seen), len(nodes)-1, start)
	}
	return nil
}

// A mesh whose nodes all bootstrapped through one node does not stay a
// star around it, nor become one again when links drop: killing that node
// leaves the other nine connected and converging.
func TestKillingTheBootstrapNodeLeavesTheRestConnected(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 10, func(c *Config) { c.HeartbeatInterval = 150 * time.Millisecond })
	hub := nodes[0]
	for _, n := range nodes[1:] {
		link(t, hub, n)
	}
	waitFor(t, 30*time.Second, "every node knows every member", func() error {
		for i, n := range nodes {
			if got := len(n.members.list()); got != len(nodes)-1 {
				return fmt.Errorf("node %d lists %d members", i, got)
			}
		}
		return nil
	})
	waitFor(t, 30*time.Second, "the graph survives the hub", func() error { return connectedWithout(nodes, 0) })
	// Connections between members that drop (trimmed, a flaky link) come
	// back: the leaves hang up on each other and fan out again.
	for _, n := range nodes[1:] {
		for _, m := range nodes[1:] {
			if m != n {
				n.Host().Network().ClosePeer(m.ID())
			}
		}
	}
	waitFor(t, 30*time.Second, "the graph survives the hub again", func() error { return connectedWithout(nodes, 0) })
	hub.Close()
	rest := nodes[1:]
	acked := writeKeys(t, rest[0], "after-hub", 20)
	for k, v := range writeKeys(t, rest[len(rest)-1], "far-side", 20) {
		acked[k] = v
	}
	for i, n := range rest {
		waitFor(t, 30*time.Second, fmt.Sprintf("node %d has every write made after the hub died", i+1), func() error { return hasAll(ctx, n, acked) })
	}
	if err := connectedWithout(nodes, 0); err != nil {
		t.Error(err)
	}
}
