package node

import (
	"context"
	"slices"
	"time"

	"github.com/gossipmesh/gossipmesh/sync/merkle"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Verified membership. A heartbeat is signed by its sender, but anyone who
// holds the swarm key can mint identities, sign heartbeats with them and
// relay those; copying the real holders' roots, such ghosts once took
// partitions over in placement, and the real holders dropped their data.
// So a peer counts as a member only after this node has completed the sync
// handshake with it directly: the connection proves the identity (Noise),
// the gater has admitted it (allowlist, blocks), and the hello proves the
// mesh. A heartbeat from a peer not verified yet is held, and the peer is
// dialled for a session; once the handshake is done the held heartbeat
// admits it. And a partition is handed over only on what each new holder
// said itself, in the hello of a session that completed (see attests):
// roots in heartbeats are public and prove nothing.

// verified is what this node knows of a peer from handshakes with it.
type verified struct {
	at time.Time // the last handshake
	// The peer's roots and stored partitions from the hello of the last
	// completed session; nil before one completed.
	roots  []merkle.Hash
	stores []byte
}

// candidate is a peer heard of in heartbeats but not verified.
type candidate struct {
	hb       heartbeat // its latest heartbeat
	heard    time.Time
	next     time.Time // when to try to verify it again
	failures int
}

// Limits on unverified peers, so relayed ghosts cost little: at most
// maxCandidates are remembered (a full table evicts the one that failed
// most), and verifications run verifyWorkers at a time, apart from the
// anti-entropy slots, each retried after a doubling backoff.
const (
	maxCandidates      = 256
	verifyWorkers      = 4
	minVerifyBackoff   = time.Second
	maxVerifyBackoff   = time.Minute
	verifyQueueSize    = maxCandidates
	verifyDialTimeout  = 10 * time.Second
	maxFailuresCounted = 16
)

// verify records a completed handshake with id, on a connection of its own,
// and returns the heartbeat held for it, if any, to admit it.
func (m *members) verify(id peer.ID, roots []merkle.Hash, now time.Time) (heartbeat, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.verified[id]
	if v == nil {
		v = &verified{}
		m.verified[id] = v
	}
	v.at = now
	if mb := m.live[id]; mb != nil {
		// A handshake is as good a sign of life as a heartbeat, and its
		// roots are the peer's own word.
		mb.lastSeen, mb.suspect = now, false
		if len(roots) == len(mb.roots) {
			copy(mb.roots, roots)
		}
	}
	c, ok := m.pending[id]
	delete(m.pending, id)
	if !ok {
		return heartbeat{}, false
	}
	return c.hb, true
}

// admitHeld admits a freshly verified peer by the heartbeat it was held
// with. It reports whether placement changes.
func (m *members) admitHeld(id peer.ID, hb heartbeat, partitions int, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.admit(id, hb, partitions, now)
}

// hold keeps the heartbeat of a peer not verified yet. Called with m.mu
// held.
func (m *members) hold(id peer.ID, hb heartbeat, now time.Time) {
	if c, ok := m.pending[id]; ok {
		if hb.incarnation >= c.hb.incarnation {
			c.hb, c.heard = hb, now
		}
		return
	}
	if len(m.pending) >= maxCandidates {
		m.evictCandidate()
	}
	m.pending[id] = &candidate{hb: hb, heard: now, next: now}
}

// evictCandidate drops the candidate that failed verification most, the
// oldest heard among equals: a ghost fails every time, a real peer is
// verified on its first reachable attempt. Called with m.mu held.
func (m *members) evictCandidate() {
	var worst peer.ID
	var wc *candidate
	for id, c := range m.pending {
		if wc == nil || c.failures > wc.failures || (c.failures == wc.failures && c.heard.Before(wc.heard)) {
			worst, wc = id, c
		}
	}
	delete(m.pending, worst)
}

// dueForVerification reports whether candidate id should be dialled now,
// and if so pushes its next attempt out.
func (m *members) dueForVerification(id peer.ID, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.pending[id]
	if !ok || now.Before(c.next) {
		return false
	}
	backoff := minVerifyBackoff << min(c.failures, maxFailuresCounted)
	c.next = now.Add(min(backoff, maxVerifyBackoff))
	return true
}

// verificationFailed counts a failed attempt to verify id.
func (m *members) verificationFailed(id peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.pending[id]; ok {
		c.failures = min(c.failures+1, maxFailuresCounted)
	}
}

// attest records what a peer said of itself in the hello of a session that
// completed.
func (m *members) attest(id peer.ID, theirs hello) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v := m.verified[id]; v != nil {
		v.roots, v.stores = slices.Clone(theirs.roots), slices.Clone(theirs.stores)
	}
}

// attests reports whether live member id said, in a completed session with
// this node, that it stores partition p with root root.
func (m *members) attests(id peer.ID, p uint32, root merkle.Hash) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.verified[id]
	if v == nil || m.live[id] == nil || int(p) >= len(v.roots) {
		return false
	}
	return bitSet(v.stores, p) && v.roots[p] == root
}

// pruneUnverified forgets candidates not heard of, and verified peers not
// members, for longer than deadAfter. Called with m.mu held.
func (m *members) pruneUnverified(now time.Time, deadAfter time.Duration) {
	for id, c := range m.pending {
		if now.Sub(c.heard) > deadAfter {
			delete(m.pending, id)
		}
	}
	for id, v := range m.verified {
		if m.live[id] == nil && now.Sub(v.at) > deadAfter {
			delete(m.verified, id)
		}
	}
}

// isVerified reports whether id passed a handshake with this node.
func (m *members) isVerified(id peer.ID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.verified[id] != nil
}

// anyVerified reports whether any peer passed a handshake with this node.
func (m *members) anyVerified() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.verified) > 0
}

// candidates counts the peers heard of but not verified.
func (m *members) candidates() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending)
}

// verifySoon queues candidate id for a verification session, unless it was
// tried too recently or the queue is full.
func (n *Node) verifySoon(id peer.ID) {
	if !n.members.dueForVerification(id, n.cfg.Now()) {
		return
	}
	select {
	case n.verifyq <- id:
	default:
	}
}

// verifyLoop runs verifications: a dial and the sync handshake alone (the
// hellos both ways, which verify each side to the other), so that a large
// mesh's members verify each other at the cost of a round trip each; the
// next anti-entropy round reconciles. It has slots of its own, so
// candidates that cannot be reached never hold up honest anti-entropy.
func (n *Node) verifyLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.closing:
			return
		case id := <-n.verifyq:
			n.verifyPeer(id)
		}
	}
}

func (n *Node) verifyPeer(id peer.ID) {
	if !n.sec.gate.allowed(id) {
		n.members.verificationFailed(id)
		return
	}
	net := n.host.Network()
	wasConnected := net.Connectedness(id) == network.Connected
	ctx, cancel := context.WithTimeout(n.ctx, verifyDialTimeout)
	conn, err := net.DialPeer(ctx, id)
	cancel()
	if err != nil || conn == nil {
		n.members.verificationFailed(id)
		return
	}
	if err := n.handshake(id); err != nil && n.ctx.Err() == nil {
		n.members.verificationFailed(id)
		n.noteSyncError(id, err)
	}
	// A connection opened only to verify is not kept when the node has
	// its fan-out already: every node verifies every member, and keeping
	// those connections would make the overlay a full mesh, where
	// GossipSub's flood publishing sends each delta to every peer.
	if !wasConnected {
		_ = net.ClosePeer(id)
	}
}

// onVerified admits a peer whose handshake just completed, by the heartbeat
// held for it.
func (n *Node) onVerified(id peer.ID, roots []merkle.Hash) {
	hb, held := n.members.verify(id, roots, n.cfg.Now())
	if held && n.members.admitHeld(id, hb, n.cfg.Partitions, n.cfg.Now()) {
		n.log.Info("member joined", "peer", id)
		n.replace()
	}
}

// newcomerSessions caps the inbound sessions open at once with peers that
// are not members (yet): a share of the protocol's inbound stream limit,
// so peers that only say hello, however many, leave the rest to members.
var newcomerSessions = int(limitSync.StreamsInbound / 8)

// guardNewcomers wraps the sync handler with the newcomers' cap. A session
// past it is reset before anything is read; the peer may retry, and a
// member is never held up by it.
func (n *Node) guardNewcomers(h network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		if n.members.isLive(s.Conn().RemotePeer()) {
			h(s)
			return
		}
		if n.newcomers.Add(1) > int64(newcomerSessions) {
			n.newcomers.Add(-1)
			n.sec.syncRefused.Add(1)
			_ = s.Reset()
			return
		}
		defer n.newcomers.Add(-1)
		h(s)
	}
}

// isLive reports whether id is a member.
func (m *members) isLive(id peer.ID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live[id] != nil
}

// handshake opens a sync stream to id, exchanges hellos and ends the stream
// there: the peer's handler sees the end before any session message and
// stops without a session.
func (n *Node) handshake(id peer.ID) error {
	ctx, cancel := context.WithTimeout(n.ctx, verifyDialTimeout)
	defer cancel()
	s, err := n.host.NewStream(ctx, id, syncProtocol)
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(verifyDialTimeout))
	f, err := newFramer(s, n.syncConfig().MaxFrameBytes, n.cfg.CompressAbove)
	if err != nil {
		s.Reset()
		return err
	}
	defer f.close()
	if _, err := n.exchangeHello(ctx, f, id); err != nil {
		endStream(s, err)
		return err
	}
	return nil
}
