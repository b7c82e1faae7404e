package node

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
)

// The connection manager trims connections once the node has more than
// connsHigh, down to connsLow, sparing members: each is tagged with
// memberTag while it is one. Sybils that connect and never become members
// are trimmed first, so they cannot crowd members out of the resource
// manager's connection limit. GossipSub tags its own mesh peers too.
var (
	connsHigh = int(limitSystem.Conns / 2)
	connsLow  = connsHigh * 3 / 4
)

const (
	memberTag      = "gossipmesh-member"
	memberTagValue = 100
	// connGrace spares a new connection from trimming long enough for its
	// first session to verify the peer.
	connGrace = 30 * time.Second
)

func connManagerOption() (libp2p.Option, error) {
	cm, err := connmgr.NewConnManager(connsLow, connsHigh, connmgr.WithGracePeriod(connGrace))
	if err != nil {
		return nil, fmt.Errorf("node: connection manager: %w", err)
	}
	return libp2p.ConnectionManager(cm), nil
}

// tagMember marks id as a member for the connection manager, or unmarks it.
func (n *Node) tagMember(id peer.ID, member bool) {
	if member {
		n.host.ConnManager().TagPeer(id, memberTag, memberTagValue)
	} else {
		n.host.ConnManager().UntagPeer(id, memberTag)
	}
}
