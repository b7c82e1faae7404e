package node

import (
	gosync "sync"
	"time"

	"github.com/gossipmesh/gossipmesh/sync/merkle"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// members tracks the peers known to be in this mesh (they passed the sync
// handshake), the peers to keep reconnecting to, and the roots each member
// last reported.
type members struct {
	mu      gosync.Mutex
	live    map[peer.ID]*member
	known   map[peer.ID]*redial
	foreign map[peer.ID]bool // refused: another mesh
}

type member struct {
	roots []merkle.Hash // by partition; as of the last handshake or session
}

type redial struct {
	info    peer.AddrInfo
	backoff time.Duration
	next    time.Time
}

func (m *members) init() {
	m.live = make(map[peer.ID]*member)
	m.known = make(map[peer.ID]*redial)
	m.foreign = make(map[peer.ID]bool)
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
			r.backoff = time.Second
			continue
		}
		if now.Before(r.next) {
			continue
		}
		out = append(out, r.info)
		r.next = now.Add(r.backoff)
		r.backoff = min(2*r.backoff, time.Minute)
	}
	return out
}

func (m *members) join(id peer.ID, roots []merkle.Hash) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.live[id] = &member{roots: roots}
}

func (m *members) setRoots(id peer.ID, roots []merkle.Hash) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if mb, ok := m.live[id]; ok {
		mb.roots = roots
	}
}

func (m *members) remove(id peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.live, id)
}

func (m *members) refuse(id peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.foreign[id] = true
	delete(m.live, id)
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
	return out
}

// agreeing counts members whose last known root of partition p is root.
func (m *members) agreeing(p uint32, root merkle.Hash) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	count := 0
	for _, mb := range m.live {
		if int(p) < len(mb.roots) && mb.roots[p] == root {
			count++
		}
	}
	return count
}
