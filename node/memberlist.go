package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// MemberState is a member's liveness as this node sees it.
type MemberState string

const (
	MemberAlive   MemberState = "alive"   // heard from within Config.SuspectAfter
	MemberSuspect MemberState = "suspect" // silent for Config.SuspectAfter
	MemberDead    MemberState = "dead"    // silent for Config.DeadAfter: out of placement
	MemberLeft    MemberState = "left"    // announced its leave: out of placement
)

// Member describes one member of the mesh as this node sees it.
type Member struct {
	ID    peer.ID
	State MemberState
	Self  bool
	Addrs []multiaddr.Multiaddr
	// Partitions the member holds under this node's placement (every
	// partition when the replication factor is 0).
	Partitions []uint32
}

// gone remembers a member that was declared dead or left, so Members can
// list it and a left member's late messages do not bring it back.
type gone struct {
	at          time.Time
	incarnation uint64
	left        bool
}

// leftQuiet is how long a member that left is not re-added by a sync
// handshake (its heartbeats are told apart by incarnation instead).
const leftQuiet = time.Minute

// maxGone bounds the dead and left members remembered; the oldest go first.
const maxGone = 256

// forget records a member as gone. Called with m.mu held.
func (m *members) forget(id peer.ID, g gone) {
	m.gone[id] = g
	for len(m.gone) > maxGone {
		oldest := id
		for k, v := range m.gone {
			if v.at.Before(m.gone[oldest].at) {
				oldest = k
			}
		}
		delete(m.gone, oldest)
	}
}

// leave takes member id's own leave announcement. It reports whether the
// live set changed.
func (m *members) leave(id peer.ID, incarnation uint64, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	mb, live := m.live[id]
	if live && incarnation < mb.incarnation {
		return false // from before a restart
	}
	delete(m.live, id)
	m.forget(id, gone{at: now, incarnation: incarnation, left: true})
	return live
}

// states returns the live members with their state, and the gone ones.
func (m *members) states() map[peer.ID]MemberState {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[peer.ID]MemberState, len(m.live)+len(m.gone))
	for id, g := range m.gone {
		out[id] = MemberDead
		if g.left {
			out[id] = MemberLeft
		}
	}
	for id, mb := range m.live {
		out[id] = MemberAlive
		if mb.suspect {
			out[id] = MemberSuspect
		}
	}
	return out
}

// Members lists this node and every member it knows of, alive, suspect,
// recently dead or left, sorted by peer ID with this node first.
func (n *Node) Members(ctx context.Context) ([]Member, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	self := n.host.ID()
	held := map[peer.ID][]uint32{}
	if pl := n.place(); pl != nil {
		for p, hs := range pl.holders {
			for _, h := range hs {
				held[h] = append(held[h], uint32(p))
			}
		}
	}
	out := []Member{{ID: self, State: MemberAlive, Self: true, Addrs: n.Addrs(), Partitions: held[self]}}
	states := n.members.states()
	ids := make([]peer.ID, 0, len(states))
	for id := range states {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		m := Member{ID: id, State: states[id], Addrs: n.host.Peerstore().Addrs(id)}
		if m.State == MemberAlive || m.State == MemberSuspect {
			m.Partitions = held[id]
		}
		out = append(out, m)
	}
	return out, nil
}

// ErrNotReady: the node cannot serve yet (see Ready).
var ErrNotReady = errors.New("node: not ready")

// Ready reports whether the node is ready to serve: open, with its store
// readable and its trees built (its event loop answers), and, when it was
// given bootstrap peers or has connected to any, with at least one live
// member or a peer it completed the mesh handshake with. A node given no peer is ready alone. The error wraps ErrNotReady
// (or ErrClosed) and says why.
func (n *Node) Ready(ctx context.Context) error {
	if n.closed.Load() || n.leaving.Load() {
		return ErrClosed
	}
	if _, err := n.Status(ctx); err != nil {
		return fmt.Errorf("%w: store not answering: %v", ErrNotReady, err)
	}
	if n.expectsPeers() && len(n.members.list()) == 0 && !n.members.anyVerified() {
		return fmt.Errorf("%w: no mesh member reached yet", ErrNotReady)
	}
	return nil
}

// expectsPeers: bootstrap peers were configured or given to Connect.
func (n *Node) expectsPeers() bool {
	if len(n.cfg.Bootstrap) > 0 {
		return true
	}
	n.members.mu.Lock()
	defer n.members.mu.Unlock()
	return len(n.members.known) > 0
}

// ValueLimit is Config.MaxValueBytes: the largest value the node stores.
func (n *Node) ValueLimit() int { return n.cfg.MaxValueBytes }
