package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"

	"github.com/gossipmesh/gossipmesh/crdt"
	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"
)

// No resurrection (see package retention). The time of the last completed
// anti-entropy session of each partition is kept under
//
//	/meta/session/<partition> -> unix nanoseconds, 8 bytes big endian
//
// A node that starts with a partition whose last session is older than the
// grace marks it stale and quarantines its register states older than the
// grace: they stay on disk but out of the Merkle tree, reads of them answer
// ErrUnavailable, and no session, handoff or backup sends them. A session
// with a fresh holder (one whose own last session is within the grace)
// sends back every key it holds; each quarantined key among them returns
// to the tree, and the rest, deleted and collected elsewhere, are dropped
// when the session completes. A key written again is released at once.
// While stale, a partition's tombstones are not collected.
//
// If every live member storing the partition completed a session with the
// node and none of them was fresh, and the node has run long enough to have
// heard them all, the whole mesh was away: nobody collected anything the
// node could lack, and the quarantined states are released as they are.
const sessionPrefix = "/meta/session"

// quarantine is the per-partition session record and the stale partitions'
// quarantined keys. Readers check it from any goroutine.
type quarantine struct {
	mu     gosync.Mutex
	last   []int64 // per partition: last completed session, unix ns; 0 never
	parts  map[uint32]*staleness
	nstale atomic.Int32 // len(parts): readers skip the lock when 0
}

// staleness is what a stale partition waits for.
type staleness struct {
	keys map[string]struct{}  // quarantined: old register states
	seen map[peer.ID]struct{} // completed sessions with peers that were not fresh
}

func sessionKey(p uint32) string { return sessionPrefix + "/" + strconv.FormatUint(uint64(p), 10) }

// loadSessions reads the last session time of every partition.
func loadSessions(ctx context.Context, store ds.Read, partitions int) ([]int64, error) {
	last := make([]int64, partitions)
	err := scanRaw(ctx, store, sessionPrefix, func(k string, v []byte) error {
		p, err := strconv.ParseUint(strings.TrimPrefix(k, sessionPrefix+"/"), 10, 32)
		if err != nil || len(v) != 8 {
			return fmt.Errorf("%w: bad session record %q", ErrStore, k)
		}
		if int(p) < partitions {
			last[p] = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return last, err
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

// end ends p's staleness and returns the keys still quarantined.
func (q *quarantine) end(p uint32) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.parts[p]
	if st == nil {
		return nil
	}
	delete(q.parts, p)
	q.nstale.Store(int32(len(q.parts)))
	keys := make([]string, 0, len(st.keys))
	for k := range st.keys {
		keys = append(keys, k)
	}
	return keys
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

// lastSession returns p's last session time. Event loop only.
func (q *quarantine) lastSession(p uint32) int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.last[p]
}

// fresh reports whether this node may vouch for p: it stores it, is not
// stale for it, and completed a session for it within the grace.
func (n *Node) fresh(p uint32, now int64) bool {
	last := n.quar.lastSession(p)
	return n.stores(p) && !n.quar.stale(p) && last != 0 && !n.retain.Stale(last, now)
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
		tx.touchSession(p, now)
	}
	return nil
}

// viewSettled reports whether the node has run long enough (DeadAfter) to
// have heard every live member: before that, "every member storing p was
// not fresh" may only mean the fresh ones have not been heard yet.
func (n *Node) viewSettled() bool {
	return n.cfg.Now().Sub(n.started) >= n.cfg.DeadAfter
}

// touchSession records that p was reconciled at now.
func (tx *txn) touchSession(p uint32, now int64) {
	q := &tx.n.quar
	q.mu.Lock()
	q.last[p] = now
	q.mu.Unlock()
	tx.putMeta(sessionKey(p), binary.BigEndian.AppendUint64(nil, uint64(now)))
}

// endStale ends p's quarantine: the keys still in it are dropped (a fresh
// holder lacks them: deleted and collected elsewhere) or, when no fresh
// holder exists, returned to the tree as they are.
func (tx *txn) endStale(p uint32, drop bool) {
	keys := tx.n.quar.end(p)
	for _, k := range keys {
		if drop {
			tx.dropCollected([]byte(k))
			continue
		}
		s, err := tx.get([]byte(k))
		if err == nil && s != nil {
			tx.remote = true
			tx.stage([]byte(k), s, nil, crdt.Timestamp{})
			tx.remote = false
			tx.staged[k].quiet = true
		}
	}
	tx.n.log.Info("partition reconciled after an absence longer than the tombstone grace",
		"partition", p, "quarantined_dropped", map[bool]int{true: len(keys)}[drop], "quarantined_kept", map[bool]int{false: len(keys)}[drop])
}

// touchAlone keeps the session time of every partition no other live
// member stores: there is nobody whose deletes the node could miss. It
// returns the stored partitions whose last session has lapsed past the
// grace and that are not yet stale.
func (tx *txn) touchAlone(now int64) (lapsed []uint32) {
	n := tx.n
	for _, p := range n.storedPartitions() {
		switch {
		case n.quar.stale(p):
		case len(n.members.storing(p)) == 0:
			tx.touchSession(p, now)
		case n.retain.Stale(n.quar.lastSession(p), now):
			lapsed = append(lapsed, p)
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
