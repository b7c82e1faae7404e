package node

import (
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// Resource limits. libp2p's autoscaled defaults (a share of the machine's
// memory and file descriptors) are the base; what a gossip mesh peer should
// never need more of is capped explicitly on top, so one abusive peer
// cannot use the node's whole budget. Anti-entropy needs one session each
// way per peer, two at most with a retry in flight; the per-peer cap on
// concurrent sessions (Config.MaxSyncSessionsPerPeer) sits below these.
var (
	limitPeer = rcmgr.ResourceLimits{
		Conns:           8,
		ConnsInbound:    4,
		ConnsOutbound:   4,
		Streams:         512,
		StreamsInbound:  256,
		StreamsOutbound: 256,
	}
	limitSyncPerPeer = rcmgr.ResourceLimits{
		Streams:         16,
		StreamsInbound:  8,
		StreamsOutbound: 8,
		Memory:          32 << 20, // two 4 MiB frames each way, and slack
	}
	limitSync = rcmgr.ResourceLimits{
		Streams:         1024,
		StreamsInbound:  512,
		StreamsOutbound: 512,
		Memory:          256 << 20,
	}
	limitSystem = rcmgr.ResourceLimits{
		Conns:        1024,
		ConnsInbound: 512,
		Streams:      16384,
	}
	// Behind a NAT many devices share one address; libp2p's default of 8
	// connections per IPv4 address would cut a mesh in pieces there.
	// Sybils from one network are capped per /24 as well.
	limitPerIPv4 = []rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: 64}, {PrefixLength: 24, ConnCount: 256}}
	limitPerIPv6 = []rcmgr.ConnLimitPerSubnet{{PrefixLength: 56, ConnCount: 64}, {PrefixLength: 48, ConnCount: 256}}
)

// resourceLimits builds the limits described above.
func resourceLimits() rcmgr.ConcreteLimitConfig {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	partial := rcmgr.PartialLimitConfig{
		System:       limitSystem,
		PeerDefault:  limitPeer,
		Protocol:     map[protocol.ID]rcmgr.ResourceLimits{syncProtocol: limitSync},
		ProtocolPeer: map[protocol.ID]rcmgr.ResourceLimits{syncProtocol: limitSyncPerPeer},
	}
	return partial.Build(scaling.AutoScale())
}

func newResourceManager() (network.ResourceManager, error) {
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(resourceLimits()),
		rcmgr.WithLimitPerSubnet(limitPerIPv4, limitPerIPv6))
}
