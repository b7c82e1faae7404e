package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/gossipmesh/gossipmesh/sync/merkle"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// Heartbeat versions. Version 2 adds a flags field at the end; a
// heartbeat with no flag set is still written as version 1, which nodes
// of earlier releases read (they refuse a version they do not know, and
// count it against the sender).
const (
	heartbeatV1      = 1
	heartbeatVersion = 2
)

// Heartbeat flags (version 2).
const (
	// hbFull: the sender's store is full (its quota or its disk floor);
	// placement gives it no partition it does not report a root for.
	hbFull = 1 << iota
)

// heartbeat is what a member announces on the membership topic every
// HeartbeatInterval: who it is (the signed sender), which partitions it
// pins, the root of every partition it stores data for, and whether its
// store is full. Roots are how an old holder learns that new holders have
// caught up, and how Status shows agreement.
type heartbeat struct {
	mesh        [8]byte
	incarnation uint64 // start time of the sender, to ignore stale heartbeats after a restart
	pins        []uint32
	roots       []partitionRoot
	addrs       [][]byte // the sender's listen multiaddrs, binary form
	flags       uint64   // hbFull; unknown bits are ignored
}

// Heartbeat limits, so a hostile member cannot make us store much.
const (
	maxHeartbeatAddrs    = 16
	maxHeartbeatAddrSize = 256
)

// heartbeatMaxBytes is the largest heartbeat of a mesh of the given
// partitions: version, mesh ID, incarnation, every partition pinned and
// with a root, and the most addresses of the longest size. Larger ones are
// refused before they are decoded.
func heartbeatMaxBytes(partitions int) int {
	return 1 + len(heartbeat{}.mesh) + 4*binary.MaxVarintLen64 +
		partitions*(2*binary.MaxVarintLen32+merkle.HashSize) +
		maxHeartbeatAddrs*(binary.MaxVarintLen16+maxHeartbeatAddrSize)
}

// checkHeartbeat decodes a heartbeat received on the membership topic.
func (n *Node) checkHeartbeat(data []byte) (heartbeat, error) {
	if limit := heartbeatMaxBytes(n.cfg.Partitions); len(data) > limit {
		return heartbeat{}, fmt.Errorf("%w: heartbeat of %d bytes, limit %d", ErrBadEnvelope, len(data), limit)
	}
	hb, err := decodeHeartbeat(data, n.cfg.Partitions)
	if err == nil && hb.mesh != n.meshID {
		err = ErrMeshMismatch
	}
	return hb, err
}

type partitionRoot struct {
	partition uint32
	root      merkle.Hash
}

func appendHeartbeat(dst []byte, hb heartbeat) []byte {
	version := byte(heartbeatVersion)
	if hb.flags == 0 {
		version = heartbeatV1
	}
	dst = append(dst, version)
	dst = append(dst, hb.mesh[:]...)
	dst = binary.AppendUvarint(dst, hb.incarnation)
	dst = binary.AppendUvarint(dst, uint64(len(hb.pins)))
	for _, p := range hb.pins {
		dst = binary.AppendUvarint(dst, uint64(p))
	}
	dst = binary.AppendUvarint(dst, uint64(len(hb.roots)))
	for _, r := range hb.roots {
		dst = binary.AppendUvarint(dst, uint64(r.partition))
		dst = append(dst, r.root[:]...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(hb.addrs)))
	for _, a := range hb.addrs {
		dst = binary.AppendUvarint(dst, uint64(len(a)))
		dst = append(dst, a...)
	}
	if version >= heartbeatVersion {
		dst = binary.AppendUvarint(dst, hb.flags)
	}
	return dst
}

func decodeHeartbeat(b []byte, partitions int) (heartbeat, error) {
	var hb heartbeat
	bad := func(what string) (heartbeat, error) {
		return heartbeat{}, fmt.Errorf("%w: heartbeat: %s", ErrBadEnvelope, what)
	}
	if len(b) < 9 || b[0] < heartbeatV1 || b[0] > heartbeatVersion {
		return bad("version")
	}
	version := b[0]
	copy(hb.mesh[:], b[1:9])
	b = b[9:]
	var k int
	if hb.incarnation, k = binary.Uvarint(b); k <= 0 {
		return bad("incarnation")
	}
	b = b[k:]
	count, k := binary.Uvarint(b)
	if k <= 0 || count > uint64(partitions) {
		return bad("pin count")
	}
	b = b[k:]
	for range count {
		p, k := binary.Uvarint(b)
		if k <= 0 || p >= uint64(partitions) {
			return bad("pin")
		}
		hb.pins, b = append(hb.pins, uint32(p)), b[k:]
	}
	if count, k = binary.Uvarint(b); k <= 0 || count > uint64(partitions) {
		return bad("root count")
	}
	b = b[k:]
	for range count {
		p, k := binary.Uvarint(b)
		if k <= 0 || p >= uint64(partitions) || len(b)-k < merkle.HashSize {
			return bad("root")
		}
		var r partitionRoot
		r.partition = uint32(p)
		copy(r.root[:], b[k:])
		hb.roots, b = append(hb.roots, r), b[k+merkle.HashSize:]
	}
	if count, k = binary.Uvarint(b); k <= 0 || count > maxHeartbeatAddrs {
		return bad("address count")
	}
	b = b[k:]
	for range count {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > maxHeartbeatAddrSize || l > uint64(len(b)-k) {
			return bad("address")
		}
		hb.addrs, b = append(hb.addrs, b[k:k+int(l)]), b[k+int(l):]
	}
	if version >= heartbeatVersion {
		if hb.flags, k = binary.Uvarint(b); k <= 0 {
			return bad("flags")
		}
		b = b[k:]
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return hb, nil
}

func (n *Node) membersTopic() string { return fmt.Sprintf("/gossipmesh/%x/members", n.meshID) }

// startMembership joins the membership topic and starts the heartbeat and
// liveness loop, which also keeps placement current.
func (n *Node) startMembership() error {
	name := n.membersTopic()
	err := n.ps.RegisterTopicValidator(name, func(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		hb, err := n.checkHeartbeat(msg.Data)
		if err != nil {
			n.stats.deltasInvalid.Add(1)
			n.logInvalid(from, err)
			n.noteInvalid(from) // from forwarded it: honest peers validate before they do
			return pubsub.ValidationReject
		}
		msg.ValidatorData = hb
		return pubsub.ValidationAccept
	})
	if err != nil {
		return fmt.Errorf("node: membership validator: %w", err)
	}
	t, err := n.ps.Join(name)
	if err != nil {
		return fmt.Errorf("node: join %s: %w", name, err)
	}
	sub, err := t.Subscribe()
	if err != nil {
		return fmt.Errorf("node: subscribe %s: %w", name, err)
	}
	n.membersT = t
	n.incarnation = uint64(n.cfg.Now().UnixNano())
	n.wg.Add(2)
	go n.receiveHeartbeats(sub)
	go n.membershipLoop()
	return nil
}

func (n *Node) receiveHeartbeats(sub *pubsub.Subscription) {
	defer n.wg.Done()
	defer sub.Cancel()
	self := n.host.ID()
	for {
		msg, err := sub.Next(n.ctx)
		if err != nil {
			return
		}
		from := msg.GetFrom()
		hb, ok := msg.ValidatorData.(heartbeat)
		if !ok || from == self || n.members.isForeign(from) {
			continue
		}
		// Members that are not our direct neighbours are dialled for
		// anti-entropy and handoff by these addresses.
		var addrs []multiaddr.Multiaddr
		for _, b := range hb.addrs {
			if a, err := multiaddr.NewMultiaddrBytes(b); err == nil {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) > 0 {
			n.host.Peerstore().AddAddrs(from, addrs, 3*n.heartbeatScale()*n.cfg.DeadAfter)
		}
		if n.members.heard(from, hb, n.cfg.Partitions, n.cfg.Now()) {
			n.log.Info("member joined", "peer", from)
			n.replace()
		}
		if n.members.isLive(from) {
			n.tagMember(from, true)
		} else {
			n.verifySoon(from)
		}
	}
}

// heartbeatMembers is the mesh size up to which heartbeats go out every
// HeartbeatInterval; see Config.HeartbeatInterval.
const heartbeatMembers = 16

// heartbeatScale is the factor, at least 1, by which the mesh's size
// stretches the heartbeat interval and the failure-detection timeouts.
func (n *Node) heartbeatScale() time.Duration {
	return time.Duration(max(1, (len(n.members.list())+1+heartbeatMembers-1)/heartbeatMembers))
}

func (n *Node) membershipLoop() {
	defer n.wg.Done()
	tick := time.NewTimer(n.cfg.HeartbeatInterval)
	defer tick.Stop()
	for {
		announced := n.publishHeartbeat()
		scale := n.heartbeatScale()
		tick.Reset(n.cfg.HeartbeatInterval * scale)
		changed := n.members.expire(n.cfg.Now(), scale*n.cfg.SuspectAfter, scale*n.cfg.DeadAfter,
			func(id peer.ID) { n.log.Info("member suspected", "peer", id) },
			func(id peer.ID) { n.log.Warn("member declared dead", "peer", id); n.tagMember(id, false) })
		if changed || announced || n.place() == nil {
			n.replace()
		}
		n.dropHandedOver()
		n.keepFanout()
		select {
		case <-n.closing:
			return
		case <-tick.C:
		}
	}
}

// publishHeartbeat announces this node and reports whether what it says
// of its store being full changed, which changes placement.
func (n *Node) publishHeartbeat() bool {
	if n.leaving.Load() {
		return false
	}
	hb := heartbeat{mesh: n.meshID, incarnation: n.incarnation, pins: n.cfg.Pinned}
	// Only placement reads the flag; without it the heartbeat stays
	// readable by earlier releases.
	if n.cfg.Replication > 0 && n.disk.announceFull() {
		hb.flags |= hbFull
	}
	for _, a := range n.host.Addrs() {
		if len(hb.addrs) < maxHeartbeatAddrs && len(a.Bytes()) <= maxHeartbeatAddrSize {
			hb.addrs = append(hb.addrs, a.Bytes())
		}
	}
	err := n.do(n.ctx, func(*txn) error {
		for p, t := range n.trees {
			if n.stores(uint32(p)) {
				hb.roots = append(hb.roots, partitionRoot{uint32(p), t.Root()})
			}
		}
		return nil
	})
	if err != nil {
		return false
	}
	changed := n.noteSelfFull(hb)
	if err := n.membersT.Publish(n.ctx, appendHeartbeat(nil, hb)); err != nil && n.ctx.Err() == nil {
		n.log.Debug("heartbeat not published", "err", err)
	}
	return changed
}

// noteSelfFull keeps what hb says of this node's store being full, for
// its own placement, and reports whether it changed.
func (n *Node) noteSelfFull(hb heartbeat) bool {
	var next *[]bool
	if hb.flags&hbFull != 0 {
		stores := storesOf(hb, n.cfg.Partitions)
		next = &stores
	}
	prev := n.selfFull.Swap(next)
	if (prev == nil) != (next == nil) {
		if next != nil {
			n.log.Warn("store full: announced to placement, which gives this node no new partition")
		} else {
			n.log.Info("store has room again: announced to placement")
		}
		return true
	}
	return next != nil && !slices.Equal(*prev, *next)
}

// storesOf returns, by partition, whether hb reports a root for it.
func storesOf(hb heartbeat, partitions int) []bool {
	stores := make([]bool, partitions)
	for _, r := range hb.roots {
		if int(r.partition) < partitions {
			stores[r.partition] = true
		}
	}
	return stores
}

// replace recomputes placement from the live members and applies it:
// subscribe to newly held partitions and pull them by anti-entropy, stop
// receiving deltas for partitions no longer held (their data is kept until
// the new holders have it; see dropHandedOver).
func (n *Node) replace() {
	n.placeMu.Lock()
	defer n.placeMu.Unlock()
	self := n.host.ID()
	pins := n.members.pinsByMember()
	if len(n.cfg.Pinned) > 0 {
		pins[self] = n.cfg.Pinned
	}
	full := n.members.fullByMember()
	if stores := n.selfFull.Load(); stores != nil {
		full[self] = *stores
	}
	next := computePlacement(self, n.members.list(), pins, full, n.cfg.Partitions, n.cfg.Replication)
	prev := n.place()
	n.placement.Store(next)
	var gained, lost []uint32
	for p := range next.held {
		was := prev == nil || prev.held[p]
		if prev == nil {
			was = false
		}
		switch {
		case next.held[p] && !was:
			gained = append(gained, uint32(p))
		case !next.held[p] && prev != nil && prev.held[p]:
			lost = append(lost, uint32(p))
		}
	}
	if prev != nil {
		n.gained.set(gained, lost, n.cfg.Now())
		n.quarantineRegained(gained)
	}
	for _, p := range gained {
		n.subscribe(p)
	}
	for _, p := range lost {
		n.unsubscribe(p)
	}
	if prev != nil && (len(gained) > 0 || len(lost) > 0) {
		n.log.Info("placement changed", "members", len(next.members), "gained", gained, "lost", lost)
		n.stats.placementChanges.Add(1)
		// Pull what we gained now rather than at the next round, from
		// members that have data for it; one session covers every
		// partition both sides store, so each source is asked once.
		asked := map[peer.ID]bool{}
		for _, p := range gained {
			if src := n.pullSource(p, prev); src != "" && !asked[src] {
				asked[src] = true
				n.syncWithSoon(src)
			}
		}
	}
}

// place returns the current placement; nil before the first computation.
func (n *Node) place() *placement { return n.placement.Load() }

// holds reports whether this node holds partition p now.
func (n *Node) holds(p uint32) bool {
	pl := n.place()
	return pl == nil || pl.held[p]
}

// stores reports whether this node keeps data for p: it holds p, or still
// has data for it from before a placement change. Event loop only.
func (n *Node) stores(p uint32) bool {
	return n.holds(p) || n.trees[p].Len() > 0
}

// storedPartitions lists the partitions this node keeps data for. Event
// loop only.
func (n *Node) storedPartitions() []uint32 {
	var out []uint32
	for p := range n.trees {
		if n.stores(uint32(p)) {
			out = append(out, uint32(p))
		}
	}
	return out
}

// randomStoring picks a live member that reports data for p, or "". It
// prefers members already connected: a round with one of them costs no
// dial, and on a sparse overlay the others may not be reachable at all.
func (n *Node) randomStoring(p uint32) peer.ID {
	cands := slices.DeleteFunc(n.members.storing(p), func(id peer.ID) bool { return id == n.host.ID() })
	if len(cands) == 0 {
		return ""
	}
	net := n.host.Network()
	connected := slices.DeleteFunc(slices.Clone(cands), func(id peer.ID) bool { return net.Connectedness(id) != network.Connected })
	if len(connected) > 0 {
		return connected[randIntN(len(connected))]
	}
	return cands[randIntN(len(cands))]
}

// pullSource picks a member to pull a newly gained partition p from: one of
// its previous holders that is still live, else a member reporting a
// non-empty root for it. A new holder that has not caught up yet reports an
// empty root, and pulling from it would leave p empty until the next round.
func (n *Node) pullSource(p uint32, prev *placement) peer.ID {
	self := n.host.ID()
	live := n.members.list()
	var cands []peer.ID
	for _, id := range prev.holders[p] {
		if id != self && slices.Contains(live, id) {
			cands = append(cands, id)
		}
	}
	if len(cands) == 0 {
		cands = slices.DeleteFunc(n.members.withData(p), func(id peer.ID) bool { return id == self })
	}
	if len(cands) == 0 {
		return n.randomStoring(p)
	}
	return cands[randIntN(len(cands))]
}

// dropHandedOver deletes the data of partitions this node no longer holds
// once at least R current holders have reported, themselves, the same root:
// only then is nothing lost by dropping it. The evidence is the holder's own
// claim in the hello of a session completed with it (members.attests),
// never a root from a heartbeat, which anyone can copy, nor an inference
// from a session: a holder whose placement lags may not take what it is
// sent. Holders not there yet are asked for a session.
func (n *Node) dropHandedOver() {
	pl := n.place()
	if pl == nil || n.cfg.Replication == 0 {
		return
	}
	var dropped []uint32
	ask := map[peer.ID]bool{}
	err := n.do(n.ctx, func(tx *txn) error {
		var drop []uint32
		for p, t := range n.trees {
			if pl.held[p] || t.Len() == 0 {
				continue
			}
			root, have := t.Root(), 0
			for _, h := range pl.holders[p] {
				if n.members.attests(h, uint32(p), root) {
					have++
				} else if h != n.host.ID() {
					ask[h] = true
				}
			}
			if need := min(n.cfg.Replication, len(pl.holders[p])); need > 0 && have >= need {
				drop = append(drop, uint32(p))
			}
		}
		if len(drop) == 0 {
			return nil
		}
		// Decided and staged in one batch, so no state can arrive
		// between the check and the deletion.
		err := scanStates(tx.ctx, n.store, func(key, _ []byte) error {
			if p := partitionOf(key, n.cfg.Partitions); slices.Contains(drop, p) {
				tx.stageDrop(key)
			}
			return nil
		})
		if err == nil {
			dropped = drop
		}
		return err
	})
	if err != nil {
		return // closing: the step may still be running on the loop
	}
	for _, p := range dropped {
		n.log.Info("partition handed over and dropped", "partition", p)
	}
	for id := range ask {
		n.syncWithSoon(id)
	}
}
