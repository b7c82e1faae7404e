package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"

	"github.com/gossipmesh/gossipmesh/crdt"
	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"
)

// No resurrection (see package retention). Each partition's session
// record is kept under
//
//	/meta/session/<partition> -> two unix-nanosecond times, 8 bytes big
//	                             endian each: last reconciled (a session,
//	                             or alone), last session with a peer
//
// A partition is stale when its last reconciliation is older than the
// grace: at start (a store with states but no records counts as never
// reconciled), when placement gives it back, or when it lapses while the
// node runs (checked before every session and at every sweep). Its
// register states older than the grace are quarantined: they stay on disk
// but out of the Merkle tree, reads of them answer ErrUnavailable, and no
// session, handoff or backup sends them. A session with a fresh holder
// (one whose last session with a peer is within the grace) sends back
// every key it holds; each quarantined key among them returns to the tree
// (so does any key a peer sends: peers send only what they may serve), and
// the rest, deleted and collected elsewhere, are dropped when the session
// completes. A key written again is released at once. While stale, a
// partition's tombstones are not collected.
//
// If every live member storing the partition completed a session with the
// node and none of them was fresh, and the node has run long enough to have
// heard them all, the whole mesh was away: nobody collected anything the
// node could lack, and the quarantined states are released as they are. A
// node that knows no other member and never had a session for a partition
// (a mesh of one) keeps it reconciled by itself. A node that had peers and
// lost them all for good keeps refusing its old values until it meets a
// member again.
const sessionPrefix = "/meta/session"

// quarantine is the per-partition session record and the stale partitions'
// quarantined keys. Readers check it from any goroutine.
type quarantine struct {
	mu     gosync.Mutex
	last   []int64 // per partition: reconciled at, unix ns (a session, or alone); 0 never
	vouch  []int64 // per partition: last completed session with a peer; 0 never
	parts  map[uint32]*staleness
	nstale atomic.Int32 // len(parts): readers skip the lock when 0
}

// staleness is what a stale partition waits for.
type staleness struct {
	keys map[string]struct{}  // quarantined: old register states
	seen map[peer.ID]struct{} // completed sessions with peers that were not fresh
}

func sessionKey(p uint32) string { return sessionPrefix + "/" + strconv.FormatUint(uint64(p), 10) }

// loadSessions reads every partition's session record: the time it was
// last reconciled and the time of its last session with a peer (records
// of 8 bytes, from before the second time was kept, hold the first).
func loadSessions(ctx context.Context, store ds.Read, partitions int) (last, vouch []int64, err error) {
	last, vouch = make([]int64, partitions), make([]int64, partitions)
	err = scanRaw(ctx, store, sessionPrefix, func(k string, v []byte) error {
		p, err := strconv.ParseUint(strings.TrimPrefix(k, sessionPrefix+"/"), 10, 32)
		if err != nil || (len(v) != 8 && len(v) != 16) {
			return fmt.Errorf("%w: bad session record %q", ErrStore, k)
		}
		if int(p) < partitions {
			last[p] = int64(binary.BigEndian.Uint64(v))
			vouch[p] = last[p]
			if len(v) == 16 {
				vouch[p] = int64(binary.BigEndian.Uint64(v[8:]))
			}
		}
		return nil
	})
	return last, vouch, err
}

// loadSessions loads the session records. A store that holds states but
// no records (written before they were kept, or by a node that crashed
// before its first session) cannot tell what it missed: every partition
// starts stale.
func (n *Node) loadSessions(ctx context.Context) error {
	last, vouch, err := loadSessions(ctx, n.store, n.cfg.Partitions)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(last, func(t int64) bool { return t != 0 }) {
		has, err := hasStates(ctx, n.store)
		if err != nil {
			return err
		}
		if has {
			for p := range last {
				last[p] = 1 // long ago
			}
		}
	}
	n.quar.last, n.quar.vouch = last, vouch
	return nil
}

// stale reports whether p waits for a fresh holder.
func (q *quarantine) stale(p uint32) bool {
	if q.nstale.Load() == 0 {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.parts[p] != nil
}

// holds reports whether key of partition p is quarantined.
func (q *quarantine) holds(p uint32, key []byte) bool {
	if q.nstale.Load() == 0 {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.parts[p]
	if st == nil {
		return false
	}
	_, ok := st.keys[string(key)]
	return ok
}

// markStale quarantines keys of p.
func (q *quarantine) markStale(p uint32, keys map[string]struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.parts == nil {
		q.parts = make(map[uint32]*staleness)
	}
	q.parts[p] = &staleness{keys: keys, seen: make(map[peer.ID]struct{})}
	q.nstale.Store(int32(len(q.parts)))
}

// release takes key out of quarantine: it was confirmed or written again.
func (q *quarantine) release(p uint32, key []byte) {
	if q.nstale.Load() == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if st := q.parts[p]; st != nil {
		delete(st.keys, string(key))
	}
}

// staleParts returns the stale partitions.
func (q *quarantine) staleParts() []uint32 {
	if q.nstale.Load() == 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]uint32, 0, len(q.parts))
	for p := range q.parts {
		out = append(out, p)
	}
	return out
}

// keysOf returns the keys of p still quarantined.
func (q *quarantine) keysOf(p uint32) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.parts[p]
	if st == nil {
		return nil
	}
	keys := make([]string, 0, len(st.keys))
	for k := range st.keys {
		keys = append(keys, k)
	}
	return keys
}

// end ends p's staleness.
func (q *quarantine) end(p uint32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.parts, p)
	q.nstale.Store(int32(len(q.parts)))
}

// sawUnfresh records a completed session of stale p with a peer that was
// not fresh, and reports whether every member in storing has now had one.
func (q *quarantine) sawUnfresh(p uint32, id peer.ID, storing []peer.ID) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.parts[p]
	if st == nil {
		return false
	}
	st.seen[id] = struct{}{}
	for _, m := range storing {
		if _, ok := st.seen[m]; !ok {
			return false
		}
	}
	return len(storing) > 0
}

// quarantined reports whether key's state is quarantined.
func (n *Node) quarantined(key []byte) bool {
	return n.quar.holds(partitionOf(key, n.cfg.Partitions), key)
}

// lastSession returns when p was last reconciled (0: never).
func (q *quarantine) lastSession(p uint32) int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.last[p]
}

// fresh reports whether this node may vouch for p: it stores it, is not
// stale for it, and completed a session for it with a peer within the
// grace. Being alone keeps a partition from going stale, but is no proof
// of holding what a mesh holds.
func (n *Node) fresh(p uint32, now int64) bool {
	n.quar.mu.Lock()
	vouch := n.quar.vouch[p]
	n.quar.mu.Unlock()
	return n.stores(p) && !n.quar.stale(p) && vouch != 0 && !n.retain.Stale(vouch, now)
}

// noteSession records, on the event loop, a session completed with a peer
// whose hello was theirs, for every partition both sides store.
func (tx *txn) noteSession(id peer.ID, theirs hello, now int64) error {
	n := tx.n
	for _, p := range n.storedPartitions() {
		if !theirs.storesPartition(p) {
			continue
		}
		if n.quar.stale(p) {
			switch {
			case theirs.freshFor(p):
				tx.endStale(p, true)
			case n.quar.sawUnfresh(p, id, n.members.storing(p)) && n.viewSettled():
				tx.endStale(p, false)
			default:
				continue
			}
		}
		tx.touchSession(p, now, true)
	}
	return nil
}

// viewSettled reports whether the node has run long enough (DeadAfter) to
// have heard every live member: before that, "every member storing p was
// not fresh" may only mean the fresh ones have not been heard yet.
func (n *Node) viewSettled() bool {
	return n.cfg.Now().Sub(n.started) >= n.cfg.DeadAfter
}

// touchSession records that p was reconciled at now, with a peer or alone.
// The memory copy changes once the batch is written.
func (tx *txn) touchSession(p uint32, now int64, withPeer bool) {
	q := &tx.n.quar
	q.mu.Lock()
	vouch := q.vouch[p]
	q.mu.Unlock()
	if withPeer {
		vouch = now
	}
	tx.putMeta(sessionKey(p), binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(now)), uint64(vouch)))
	tx.afterCommit(func() {
		q.mu.Lock()
		q.last[p], q.vouch[p] = now, vouch
		q.mu.Unlock()
	})
}

// endStale ends p's quarantine once the batch is written: the keys still
// in it are dropped (a fresh holder lacks them: deleted and collected
// elsewhere) or, when no fresh holder exists, returned to the tree as they
// are. A key this batch writes again is left to that write.
func (tx *txn) endStale(p uint32, drop bool) {
	keys := tx.n.quar.keysOf(p)
	kept, dropped := 0, 0
	for _, k := range keys {
		if c, ok := tx.staged[k]; ok && !c.drop {
			continue
		}
		s, err := tx.get([]byte(k))
		if err != nil || s == nil {
			continue
		}
		if drop {
			tx.dropCollected([]byte(k))
			dropped++
			continue
		}
		tx.remote = true
		tx.stage([]byte(k), s, nil, crdt.Timestamp{})
		tx.remote = false
		tx.staged[k].quiet = true
		kept++
	}
	tx.afterCommit(func() { tx.n.quar.end(p) })
	tx.n.log.Info("partition reconciled after an absence longer than the tombstone grace",
		"partition", p, "quarantined_dropped", dropped, "quarantined_kept", kept)
}

// touchAlone keeps reconciled the partitions of a node that knows no other
// member and never had a session for them (a mesh of one: nobody whose
// deletes it could miss), and
// ends their staleness once it has run DeadAfter without hearing one. It
// returns the stored partitions whose last reconciliation has lapsed past
// the grace and that are not yet stale. A node that knows other members
// but hears none may be cut off from them: its partitions lapse.
func (tx *txn) touchAlone(now int64) (lapsed []uint32) {
	n := tx.n
	knowsOthers := n.members.knowsOthers()
	for _, p := range n.storedPartitions() {
		stale := n.quar.stale(p)
		n.quar.mu.Lock()
		alone := !knowsOthers && n.quar.vouch[p] == 0
		n.quar.mu.Unlock()
		switch {
		case alone && stale && n.viewSettled():
			tx.endStale(p, false)
			tx.touchSession(p, now, false)
		case alone && !stale:
			tx.touchSession(p, now, false)
		case !stale && n.retain.Stale(n.quar.lastSession(p), now):
			lapsed = append(lapsed, p)
		}
	}
	// A stale partition placement moved away while all its keys were
	// quarantined has an empty tree, so no handover drops it: its old
	// states, on disk and out of the tree, go here.
	for _, p := range n.quar.staleParts() {
		if !n.stores(p) {
			tx.endStale(p, true)
		}
	}
	return lapsed
}

// quarantineLapsed quarantines the stored partitions whose last session
// has lapsed past the grace: the node ran too long without one, or a crash
// took the merges after the last durable one. The sweep calls it, and
// every session before it starts, so that no session sends a lapsed
// partition's old states.
func (n *Node) quarantineLapsed(ctx context.Context, now int64) error {
	var lapsed []uint32
	if err := n.do(ctx, func(tx *txn) error { lapsed = tx.touchAlone(now); return nil }); err != nil {
		return err
	}
	if len(lapsed) == 0 {
		return nil
	}
	return n.quarantine(ctx, lapsed, now)
}

// quarantineRegained quarantines the old register states of partitions
// placement gave back to this node after more than the grace without a
// session for them: what the node kept of them from before may have been
// deleted and collected by the holders meanwhile.
//
// Between the gain and the end of the scan the old states are still
// served; the sweep's own check (touchAlone) would catch them later too.
func (n *Node) quarantineRegained(parts []uint32) {
	now := n.cfg.Now().UnixNano()
	var stale []uint32
	for _, p := range parts {
		if n.retain.Stale(n.quar.lastSession(p), now) && !n.quar.stale(p) {
			stale = append(stale, p)
		}
	}
	if len(stale) == 0 || n.closed.Load() {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.quarantine(n.ctx, stale, now); err != nil && n.ctx.Err() == nil {
			n.log.Warn("quarantine of regained partitions failed", "partitions", stale, "err", err)
		}
	}()
}

// quarantine takes the register states of parts older than the grace out
// of their trees and marks the partitions stale.
func (n *Node) quarantine(ctx context.Context, parts []uint32, now int64) error {
	want := make(map[uint32]map[string]struct{}, len(parts))
	for _, p := range parts {
		want[p] = make(map[string]struct{})
	}
	err := scanStates(ctx, n.store, func(key, state []byte) error {
		if q, ok := want[partitionOf(key, n.cfg.Partitions)]; ok {
			if s, err := decodeStored(key, state); err == nil && n.retain.Old(s, now) {
				q[string(key)] = struct{}{}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return n.do(ctx, func(tx *txn) error {
		for p, keys := range want {
			if n.quar.stale(p) || !n.retain.Stale(n.quar.lastSession(p), now) {
				continue // reconciled, or quarantined, since the decision
			}
			for k := range keys {
				// Written again since the scan: no longer old.
				if s, err := tx.get([]byte(k)); err != nil || !n.retain.Old(s, now) {
					delete(keys, k)
					continue
				}
				n.trees[p].Delete([]byte(k))
			}
			n.quar.markStale(p, keys)
			n.log.Warn("partition not reconciled within the tombstone grace: its old register states wait for a fresh holder", "partition", p, "quarantined", len(keys))
		}
		return nil
	})
}
