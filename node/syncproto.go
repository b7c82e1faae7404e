package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gossipmesh/gossipmesh/sync/antientropy"
	"github.com/gossipmesh/gossipmesh/sync/merkle"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// syncProtocol is the libp2p protocol of anti-entropy sessions.
const syncProtocol = protocol.ID("/gossipmesh/sync/1.0.0")

// helloVersion 2 adds the replication factor, 3 the stores and fresh
// partition bitmaps; a version 2 hello is still read.
const helloVersion = 3

// maxConcurrentSyncs bounds outgoing anti-entropy sessions.
const maxConcurrentSyncs = 4

// hello opens every sync stream in both directions: it proves both ends are
// in the same mesh and carries the sender's partition roots.
// partitions, replication and name are what mesh hashes, sent so that a
// refusal can say how the meshes differ.
type hello struct {
	mesh        [8]byte
	partitions  int
	replication int
	name        string
	roots       []merkle.Hash
	// stores and fresh are bitmaps over partitions: those the sender
	// stores, and those it can vouch for after a long absence of the
	// receiver (see quarantine.go).
	stores, fresh []byte
}

func bitmapLen(partitions int) int { return (partitions + 7) / 8 }

// maxMeshName is the longest mesh name a hello carries.
const maxMeshName = 256

// helloMaxBytes is the largest hello of a mesh of the given partitions:
// version, mesh ID, three counts and a name length, the longest name, a
// root per partition and the two bitmaps. A hello's frame is read with
// this limit, not the frame limit of session records: a peer that
// announces more is not of this mesh.
func helloMaxBytes(partitions int) int {
	return 1 + len(hello{}.mesh) + 4*binary.MaxVarintLen64 + maxMeshName +
		partitions*merkle.HashSize + 2*bitmapLen(partitions)
}

func (h hello) storesPartition(p uint32) bool { return bitSet(h.stores, p) }
func (h hello) freshFor(p uint32) bool        { return bitSet(h.fresh, p) }

func bitSet(b []byte, p uint32) bool { return int(p/8) < len(b) && b[p/8]&(1<<(p%8)) != 0 }

func appendHello(dst []byte, h hello) []byte {
	dst = append(dst, helloVersion)
	dst = append(dst, h.mesh[:]...)
	dst = binary.AppendUvarint(dst, uint64(h.partitions))
	dst = binary.AppendUvarint(dst, uint64(h.replication))
	dst = binary.AppendUvarint(dst, uint64(len(h.name)))
	dst = append(dst, h.name...)
	dst = binary.AppendUvarint(dst, uint64(len(h.roots)))
	for _, r := range h.roots {
		dst = append(dst, r[:]...)
	}
	dst = append(dst, h.stores...)
	return append(dst, h.fresh...)
}

func decodeHello(b []byte) (hello, error) {
	var h hello
	bad := func(what string) (hello, error) { return hello{}, fmt.Errorf("%w: hello: %s", ErrBadFrame, what) }
	if len(b) < 9 || (b[0] != helloVersion && b[0] != 2) {
		return bad("version")
	}
	version := b[0]
	copy(h.mesh[:], b[1:9])
	b = b[9:]
	p, k := binary.Uvarint(b)
	if k <= 0 || p > 1<<16 {
		return bad("partitions")
	}
	h.partitions, b = int(p), b[k:]
	r, k := binary.Uvarint(b)
	if k <= 0 || r > 1<<31-1 {
		return bad("replication")
	}
	h.replication, b = int(r), b[k:]
	nameLen, k := binary.Uvarint(b)
	if k <= 0 || nameLen > maxMeshName || nameLen > uint64(len(b)-k) {
		return bad("name")
	}
	b = b[k:]
	h.name, b = string(b[:nameLen]), b[nameLen:]
	count, k := binary.Uvarint(b)
	var zero merkle.Hash
	bm := uint64(bitmapLen(h.partitions))
	if version == 2 {
		bm = 0
	}
	if k <= 0 || count > 1<<16 || count*uint64(len(zero))+2*bm != uint64(len(b)-k) {
		return bad("roots")
	}
	b = b[k:]
	h.roots = make([]merkle.Hash, count)
	for i := range h.roots {
		copy(h.roots[i][:], b[i*len(zero):])
	}
	b = b[count*uint64(len(zero)):]
	h.stores, h.fresh = b[:bm:bm], b[bm:]
	if version == 2 {
		// A node from before the bitmaps: it stores what it stores (it
		// collects nothing, so reconciling with it counts), and vouches
		// for nothing.
		h.stores = bytes.Repeat([]byte{0xff}, bitmapLen(h.partitions))
		h.fresh = make([]byte, len(h.stores))
	}
	return h, nil
}

// replica is the session's read-only view of the node. Tree is only called
// from the event loop, which owns the trees (Session.Receive runs there);
// State reads the store and may be called from any goroutine
// (Session.Next runs on the session's own).
type replica struct{ n *Node }

var _ antientropy.Replica = replica{}

func (r replica) Tree(p uint32) *merkle.Tree {
	if int(p) >= len(r.n.trees) || !r.n.stores(p) {
		return nil
	}
	return r.n.trees[p]
}

func (r replica) State(_ uint32, key []byte) ([]byte, bool) {
	if r.n.quarantined(key) { // quarantined since the answer was made
		return nil, false
	}
	b, err := loadState(r.n.ctx, r.n.store, key)
	if err != nil || b == nil {
		return nil, false
	}
	return b, true
}

func (n *Node) syncConfig() antientropy.Config {
	return antientropy.DefaultConfig()
}

// startSync registers the stream handler and starts the scheduler.
func (n *Node) startSync() {
	n.host.SetStreamHandler(syncProtocol, n.guardSync(n.guardNewcomers(n.handleSync)))
	n.wg.Add(1)
	go n.syncLoop()
}

// onConnected starts a session with every newly connected peer, so a fresh
// or returning node catches up at once instead of at the next round.
func (n *Node) onConnected(id peer.ID) {
	if n.members.isForeign(id) {
		return
	}
	select {
	case n.syncNow <- id:
	default:
	}
}

// syncWithSoon queues a session with a given peer.
func (n *Node) syncWithSoon(id peer.ID) {
	select {
	case n.syncNow <- id:
	default:
	}
}

// TriggerSync asks for an anti-entropy round with a random member now.
func (n *Node) TriggerSync() {
	select {
	case n.syncNow <- "":
	default:
	}
}

func (n *Node) syncLoop() {
	defer n.wg.Done()
	timer := time.NewTimer(n.nextSyncDelay())
	defer timer.Stop()
	for {
		var target peer.ID
		select {
		case <-n.closing:
			return
		case target = <-n.syncNow:
		case <-timer.C:
			timer.Reset(n.nextSyncDelay())
		}
		if target == "" {
			if target = n.randomPeer(); target == "" {
				continue
			}
		}
		select {
		case n.syncSlots <- struct{}{}:
		case <-n.closing:
			return
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer func() { <-n.syncSlots }()
			if err := n.SyncWith(n.ctx, target); err != nil && n.ctx.Err() == nil {
				n.log.Debug("anti-entropy session failed", "peer", target, "err", err)
				n.noteSyncError(target, err)
			}
		}()
	}
}

func (n *Node) nextSyncDelay() time.Duration {
	base := float64(n.cfg.SyncInterval)
	return time.Duration(base * (1 + n.cfg.SyncJitter*(randFloat()-0.5)*2))
}

// randomPeer picks the peer for a periodic round: a member that stores a
// random partition this node stores, else any member, else any connected
// peer not known to be foreign.
func (n *Node) randomPeer() peer.ID {
	var parts []uint32
	if n.do(n.ctx, func(*txn) error { parts = n.storedPartitions(); return nil }) == nil && len(parts) > 0 {
		if id := n.randomStoring(parts[randIntN(len(parts))]); id != "" {
			return id
		}
	}
	if ids := n.members.list(); len(ids) > 0 {
		net := n.host.Network()
		if connected := slices.DeleteFunc(ids, func(id peer.ID) bool { return net.Connectedness(id) != network.Connected }); len(connected) > 0 {
			return connected[randIntN(len(connected))]
		}
		ids = n.members.list()
		return ids[randIntN(len(ids))]
	}
	var cands []peer.ID
	for _, id := range n.host.Network().Peers() {
		if !n.members.isForeign(id) {
			cands = append(cands, id)
		}
	}
	if len(cands) == 0 {
		return ""
	}
	return cands[randIntN(len(cands))]
}

// SyncWith runs one anti-entropy session with a peer over all shared
// partitions and returns once both sides hold the merge of both states.
func (n *Node) SyncWith(ctx context.Context, id peer.ID) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.SyncTimeout)
	defer cancel()
	s, err := n.host.NewStream(ctx, id, syncProtocol)
	if err != nil {
		return fmt.Errorf("node: open sync stream: %w", err)
	}
	defer s.Close()
	f, err := n.syncFramer(s)
	if err != nil {
		return err
	}
	defer f.close()
	theirs, err := n.exchangeHello(ctx, f, id)
	if err != nil {
		endStream(s, err)
		return err
	}
	if err := n.quarantineLapsed(ctx, n.cfg.Now().UnixNano()); err != nil {
		s.Reset()
		return err
	}
	var sess *antientropy.Session
	var out antientropy.Output
	err = n.do(ctx, func(*txn) error {
		var err error
		sess, out, err = antientropy.Start(n.syncConfig(), replica{n}, n.storedPartitions())
		return err
	})
	if err != nil {
		s.Reset()
		return err
	}
	if err := n.runSession(ctx, s, f, id, sess, out); err != nil {
		return err
	}
	return n.sessionDone(ctx, id, theirs)
}

// sessionDone records a completed session: gained partitions the peer has
// data for are pulled, and reconciled partitions get their session time.
func (n *Node) sessionDone(ctx context.Context, id peer.ID, theirs hello) error {
	n.members.attest(id, theirs)
	n.gained.pulledFrom(theirs.roots)
	now := n.cfg.Now().UnixNano()
	return n.do(ctx, func(tx *txn) error { return tx.noteSession(id, theirs, now) })
}

// helloBitmaps returns the partitions this node stores and those it is
// fresh for. Event loop only.
func (n *Node) helloBitmaps(now int64) (stores, fresh []byte) {
	stores = make([]byte, bitmapLen(n.cfg.Partitions))
	fresh = make([]byte, len(stores))
	for _, p := range n.storedPartitions() {
		stores[p/8] |= 1 << (p % 8)
		if n.fresh(p, now) {
			fresh[p/8] |= 1 << (p % 8)
		}
	}
	return stores, fresh
}

// syncFramer frames a sync stream that ends at SyncTimeout.
func (n *Node) syncFramer(s network.Stream) (*framer, error) {
	return newStreamFramer(s, n.syncConfig().MaxFrameBytes, n.cfg.CompressAbove, time.Now().Add(n.cfg.SyncTimeout), n.cfg.SyncStallTimeout)
}

func (n *Node) handleSync(s network.Stream) {
	defer s.Close()
	id := s.Conn().RemotePeer()
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.SyncTimeout)
	defer cancel()
	f, err := n.syncFramer(s)
	if err != nil {
		s.Reset()
		return
	}
	defer f.close()
	theirs, err := n.exchangeHello(ctx, f, id)
	if err != nil {
		endStream(s, err)
		n.noteSyncError(id, err)
		return
	}
	var sess *antientropy.Session
	err = n.quarantineLapsed(ctx, n.cfg.Now().UnixNano())
	if err == nil {
		err = n.do(ctx, func(*txn) error {
			var err error
			sess, err = antientropy.Accept(n.syncConfig(), replica{n})
			return err
		})
	}
	if err == nil {
		err = n.runSession(ctx, s, f, id, sess, antientropy.Output{})
	}
	if err == nil {
		err = n.sessionDone(ctx, id, theirs)
	}
	if err != nil {
		if !errors.Is(err, ErrStoreFull) { // a full store ends the session cleanly
			s.Reset()
		}
		n.noteSyncError(id, err)
		if n.ctx.Err() == nil {
			n.log.Debug("anti-entropy session failed", "peer", id, "err", err)
		}
	}
}

// exchangeHello sends our hello, checks the peer's and returns it. A peer
// of another mesh is refused: logged once, disconnected, and not dialled
// again.
func (n *Node) exchangeHello(ctx context.Context, f *framer, id peer.ID) (hello, error) {
	var ours hello
	err := n.do(ctx, func(*txn) error {
		ours = hello{mesh: n.meshID, partitions: n.cfg.Partitions, replication: n.cfg.Replication, name: n.cfg.Mesh, roots: n.roots()}
		ours.stores, ours.fresh = n.helloBitmaps(n.cfg.Now().UnixNano())
		return nil
	})
	if err != nil {
		return hello{}, err
	}
	if err := f.write(appendHello(nil, ours)); err != nil {
		return hello{}, err
	}
	b, err := f.readWithin(helloMaxBytes(n.cfg.Partitions))
	if errors.Is(err, errFrameTooLarge) {
		return hello{}, n.refuseForeign(id, err)
	}
	if err != nil {
		return hello{}, err
	}
	theirs, err := decodeHello(b)
	if err != nil {
		n.stats.deltasInvalid.Add(1)
		return hello{}, err
	}
	if theirs.mesh != n.meshID {
		n.members.refuse(id)
		n.log.Warn("refusing peer from another mesh", "peer", id,
			"their_mesh", theirs.name, "their_partitions", theirs.partitions, "their_replication", theirs.replication,
			"our_mesh", n.cfg.Mesh, "our_partitions", n.cfg.Partitions, "our_replication", n.cfg.Replication)
		// Close the connection a little later, so the peer can still read
		// our hello and log the refusal on its side too.
		time.AfterFunc(time.Second, func() { n.host.Network().ClosePeer(id) })
		return hello{}, fmt.Errorf("%w: %q with %d partitions and replication %d", ErrMeshMismatch, theirs.name, theirs.partitions, theirs.replication)
	}
	n.onVerified(id, theirs.roots)
	return theirs, nil
}

// refuseForeign refuses a peer whose hello is larger than any of this
// mesh's: it is of a mesh with more partitions, or hostile. It is refused
// as another mesh's peer, and the oversized frame counts as invalid input.
func (n *Node) refuseForeign(id peer.ID, err error) error {
	n.stats.deltasInvalid.Add(1)
	n.members.refuse(id)
	n.log.Warn("refusing peer from another mesh: its hello is larger than this mesh's", "peer", id, "err", err,
		"our_mesh", n.cfg.Mesh, "our_partitions", n.cfg.Partitions, "our_replication", n.cfg.Replication)
	time.AfterFunc(time.Second, func() { n.host.Network().ClosePeer(id) })
	return fmt.Errorf("%w: %w", ErrMeshMismatch, err)
}

// mergeRecords validates and merges the remote states a session produced.
// An invalid record is refused on its own and counted against the peer
// (enough of them block it); the rest of the session goes on, so one bad
// record cannot keep a node from catching up.
func (n *Node) mergeRecords(tx *txn, from peer.ID, recs []antientropy.Record) error {
	for _, r := range recs {
		s, err := n.checkRecord(r.Key, r.State)
		if err == nil && partitionOf(r.Key, n.cfg.Partitions) != r.Partition {
			err = fmt.Errorf("%w: key %q is not in partition %d", ErrBadFrame, r.Key, r.Partition)
		}
		if err != nil {
			n.stats.deltasInvalid.Add(1)
			n.logInvalid(from, err)
			n.noteInvalid(from)
			continue
		}
		if _, err := tx.mergeRemote(r.Key, s); err != nil {
			return err
		}
	}
	return nil
}

// endStream ends a stream after a failed handshake: a refused peer gets a
// clean close so it can read why; anything else is reset.
func endStream(s network.Stream, err error) {
	if errors.Is(err, ErrMeshMismatch) {
		_ = s.Close()
		return
	}
	_ = s.Reset()
}
