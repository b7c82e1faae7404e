package node

import (
	"slices"
	gosync "sync"
	"time"

	"github.com/gossipmesh/gossipmesh/sync/merkle"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// members tracks the peers known to be in this mesh, what each stores and
// its roots, the peers to keep reconnecting to, and peers refused as
// foreign. A peer is a member only once it is verified (it passed the sync
// handshake with this node, on a connection of its own) and has sent a
// heartbeat: a heartbeat alone may be relayed for an identity nobody can
// reach, and a handshake alone says nothing of what the peer stores. See
// verify.go.
type members struct {
	mu       gosync.Mutex
	live     map[peer.ID]*member
	known    map[peer.ID]*redial
	foreign  map[peer.ID]bool // refused: another mesh
	gone     map[peer.ID]gone // recently declared dead or left, for Members
	verified map[peer.ID]*verified
	pending  map[peer.ID]*candidate // heard of, not verified yet
}

type member struct {
	lastSeen    time.Time
	suspect     bool
	incarnation uint64
	pins        []uint32
	stores      []bool        // by partition: the member has data for it; nil until its first heartbeat
	roots       []merkle.Hash // by partition, as last reported
	full        bool          // its store is full (heartbeat flag hbFull)
}

// maxRedialBackoff caps the wait between attempts to reach a known peer.
// A dial to an unreachable peer costs little, and after a partition heals
// the mesh should not wait long to reconnect.
const maxRedialBackoff = 15 * time.Second

type redial struct {
	info    peer.AddrInfo
	backoff time.Duration
	next    time.Time
	warned  bool // a failure to reach it was logged since it was last connected
}

func (m *members) init() {
	m.live = make(map[peer.ID]*member)
	m.known = make(map[peer.ID]*redial)
	m.foreign = make(map[peer.ID]bool)
	m.gone = make(map[peer.ID]gone)
	m.verified = make(map[peer.ID]*verified)
	m.pending = make(map[peer.ID]*candidate)
}

// knowsOthers reports whether this node has ever known another member of
// its mesh: a live one, one that left or died, or a peer to redial.
func (m *members) knowsOthers() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.live) > 0 || len(m.known) > 0 || len(m.gone) > 0 || len(m.verified) > 0
}

func (m *members) remember(info peer.AddrInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.known[info.ID]; ok {
		r.info.Addrs = append(r.info.Addrs[:0], info.Addrs...)
		return
	}
	m.known[info.ID] = &redial{info: info, backoff: time.Second}
}

// due returns the known peers that are disconnected and whose backoff has
// elapsed, and pushes their next attempt out.
func (m *members) due(now time.Time, net network.Network) []peer.AddrInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []peer.AddrInfo
	for id, r := range m.known {
		if m.foreign[id] {
			continue
		}
		if net.Connectedness(id) == network.Connected {
			r.backoff, r.warned = time.Second, false
			continue
		}
		if now.Before(r.next) {
			continue
		}
		out = append(out, r.info)
		r.next = now.Add(r.backoff)
		r.backoff = min(2*r.backoff, maxRedialBackoff)
	}
	return out
}

// firstFailure reports whether a failure to reach known peer id is the
// first since it was last connected, and notes that it was reported.
func (m *members) firstFailure(id peer.ID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.known[id]
	if !ok || r.warned {
		return false
	}
	r.warned = true
	return true
}

// heard records a heartbeat. It reports whether the member is new, its
// pins changed, or what it says of its store being full changed (the
// flag, or while full the partitions it stores), which changes placement.
// The heartbeat of a peer not verified yet is kept aside (see hold) and
// changes nothing.
func (m *members) heard(id peer.ID, hb heartbeat, partitions int, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.verified[id] == nil {
		m.hold(id, hb, now)
		return false
	}
	return m.admit(id, hb, partitions, now)
}

// admit records a verified peer's heartbeat. Called with m.mu held.
func (m *members) admit(id peer.ID, hb heartbeat, partitions int, now time.Time) bool {
	if g, ok := m.gone[id]; ok && g.left && hb.incarnation <= g.incarnation {
		return false // a heartbeat sent before its leave
	}
	delete(m.gone, id)
	mb, ok := m.live[id]
	if !ok {
		mb = &member{}
		m.live[id] = mb
	}
	if ok && hb.incarnation < mb.incarnation {
		return false // a stale heartbeat from before a restart
	}
	changed := !ok || !slices.Equal(mb.pins, hb.pins)
	full := hb.flags&hbFull != 0
	stores := storesOf(hb, partitions)
	changed = changed || mb.full != full || full && !slices.Equal(mb.stores, stores)
	mb.lastSeen, mb.suspect, mb.incarnation, mb.pins = now, false, hb.incarnation, hb.pins
	mb.stores, mb.full = stores, full
	if len(mb.roots) != partitions {
		mb.roots = make([]merkle.Hash, partitions)
	}
	for _, r := range hb.roots {
		if int(r.partition) < partitions {
			mb.roots[r.partition] = r.root
		}
	}
	return changed
}

// fullByMember returns, for each live member whose store is full, the
// partitions it stores (the only ones placement may give it).
func (m *members) fullByMember() map[peer.ID][]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[peer.ID][]bool)
	for id, mb := range m.live {
		if mb.full {
			out[id] = mb.stores
		}
	}
	return out
}

// expire suspects members silent for suspectAfter and removes those silent
// for deadAfter. It reports whether the live set changed.
func (m *members) expire(now time.Time, suspectAfter, deadAfter time.Duration, onSuspect, onDead func(peer.ID)) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := false
	m.pruneUnverified(now, deadAfter)
	for id, mb := range m.live {
		silent := now.Sub(mb.lastSeen)
		switch {
		case silent > deadAfter:
			delete(m.live, id)
			delete(m.verified, id) // back only through a new handshake
			m.forget(id, gone{at: now, incarnation: mb.incarnation})
			changed = true
			onDead(id)
		case silent > suspectAfter && !mb.suspect:
			mb.suspect = true
			onSuspect(id)
		}
	}
	return changed
}

func (m *members) refuse(id peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.foreign[id] = true
	delete(m.live, id)
	delete(m.verified, id)
	delete(m.pending, id)
}

func (m *members) isForeign(id peer.ID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.foreign[id]
}

func (m *members) list() []peer.ID {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]peer.ID, 0, len(m.live))
	for id := range m.live {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// pins returns each live member's pinned partitions.
func (m *members) pinsByMember() map[peer.ID][]uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[peer.ID][]uint32)
	for id, mb := range m.live {
		if len(mb.pins) > 0 {
			out[id] = mb.pins
		}
	}
	return out
}

// storing lists live members that report data for partition p.
func (m *members) storing(p uint32) []peer.ID {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []peer.ID
	for id, mb := range m.live {
		if int(p) < len(mb.stores) && mb.stores[p] {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// agreeing counts the given members whose last known root of partition p is
// root.
func (m *members) agreeing(p uint32, root merkle.Hash, among []peer.ID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	count := 0
	for _, id := range among {
		if mb, ok := m.live[id]; ok && int(p) < len(mb.roots) && mb.roots[p] == root {
			count++
		}
	}
	return count
}

// withData lists live members whose last reported root of partition p is
// not the empty tree's.
func (m *members) withData(p uint32) []peer.ID {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []peer.ID
	for id, mb := range m.live {
		if int(p) < len(mb.roots) && mb.roots[p] != emptyRoot && mb.roots[p] != (merkle.Hash{}) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// emptyRoot is the root of a partition with no keys.
var emptyRoot = merkle.New().Root()
