package node

import (
	"context"
	"slices"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A mesh whose nodes all bootstrapped through one node would stay a star
// around it: a node's sessions prefer connected members, and members heard
// of by heartbeat are not dialled otherwise, so losing the hub would cut
// the others apart. Each node therefore keeps connections to at least
// fanoutTarget members, dialling random unconnected ones a few per
// membership tick: enough for GossipSub to build its mesh of degree D with
// a choice, and for the graph to survive the loss of any one node.
var fanoutTarget = pubsub.DefaultGossipSubParams().D + 2

// fanoutDialsPerTick bounds the dials a tick starts, so a node that finds
// itself poorly connected in a large mesh fans out over a few ticks
// instead of dialling dozens of members at once.
const fanoutDialsPerTick = 2

// connectedMembers counts the members this node is connected to.
func (n *Node) connectedMembers() int {
	net := n.host.Network()
	count := 0
	for _, id := range n.members.list() {
		if net.Connectedness(id) == network.Connected {
			count++
		}
	}
	return count
}

// keepFanout dials members until this node is connected to fanoutTarget
// of them (or all of them).
func (n *Node) keepFanout() {
	net := n.host.Network()
	var unconnected []peer.ID
	connected := 0
	for _, id := range n.members.list() {
		if net.Connectedness(id) == network.Connected {
			connected++
		} else if len(n.host.Peerstore().Addrs(id)) > 0 {
			unconnected = append(unconnected, id)
		}
	}
	for dials := 0; connected+dials < fanoutTarget && dials < fanoutDialsPerTick && len(unconnected) > 0; dials++ {
		i := randIntN(len(unconnected))
		id := unconnected[i]
		unconnected = slices.Delete(unconnected, i, i+1)
		n.wg.Add(1) // safe: the calling loop holds the group open
		go func() {
			defer n.wg.Done()
			ctx, cancel := context.WithTimeout(n.ctx, verifyDialTimeout)
			defer cancel()
			if _, err := net.DialPeer(ctx, id); err != nil && n.ctx.Err() == nil {
				n.log.Debug("fan-out dial failed", "peer", id, "err", err)
			}
		}()
	}
}
