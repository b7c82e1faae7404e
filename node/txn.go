package node

import (
	"bytes"
	"context"
	"fmt"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/node/retention"
	ds "github.com/ipfs/go-datastore"
)

// txn collects the writes of one event-loop batch. All of them reach the
// datastore in one synced commit (group commit); only then are trees updated,
// deltas published, watchers told and callers acknowledged.
type txn struct {
	n       *Node
	ctx     context.Context
	staged  map[string]*change
	order   []*change
	remote  bool              // set while applying changes received from peers
	durable bool              // the batch holds an acknowledged write: sync before acking
	unindex []ds.Key          // tombstone index entries to delete
	tombs   map[string]int64  // stored tombstones read by this batch, by key: their walls
	meta    map[string][]byte // node records to write (session times)
	after   []func()          // run on the event loop once the batch is written
	bytes   int               // bytes the batch writes, for the disk guard
	refused int               // remote states not stored: the store is full
	// quotaBytes is what the batch's staged states add to the store, as
	// the quota counts them (entryBytes); counted only under a quota.
	quotaBytes uint64
}

// afterCommit runs fn once the batch is written, so that no reader sees
// in memory what the store does not hold yet.
func (tx *txn) afterCommit(fn func()) { tx.after = append(tx.after, fn) }

// change is the new state of one key within a batch.
type change struct {
	key     []byte
	part    uint32
	state   crdt.State
	encoded []byte
	delta   crdt.State // what to gossip; nil when nothing should be published
	stamp   crdt.Timestamp
	remote  bool
	drop    bool // delete the key (collected, or its partition handed over)
	hint    bool // a write for a partition this node does not hold: kept under hintPrefix
	own     bool // this node's own part of the key's state: kept under ownPrefix
	quiet   bool // not a change of the mesh's data: watchers are not told
}

func newTxn(ctx context.Context, n *Node) *txn {
	return &txn{n: n, ctx: ctx, staged: make(map[string]*change)}
}

// get returns the current state of key as of this batch, or nil.
func (tx *txn) get(key []byte) (crdt.State, error) {
	if c, ok := tx.staged[string(key)]; ok {
		if c.drop {
			return nil, nil
		}
		return c.state, nil
	}
	if !tx.n.mayBeStored(key) {
		return nil, nil
	}
	b, err := loadState(tx.ctx, tx.n.store, key)
	if err != nil || b == nil {
		return nil, err
	}
	s, err := decodeStored(key, b)
	if err != nil {
		return nil, err
	}
	if wall, ok := retention.TombstoneWall(s); ok {
		if tx.tombs == nil {
			tx.tombs = make(map[string]int64)
		}
		tx.tombs[string(key)] = wall
	}
	return s, nil
}

// mayBeStored reports whether the store may hold a state of key: every
// stored state is in its partition's tree (written batches update the
// trees before the next one runs) or quarantined out of it. A new key,
// the common case of a flood of merges, costs no store read. Event loop
// only.
func (n *Node) mayBeStored(key []byte) bool {
	p := partitionOf(key, n.cfg.Partitions)
	if _, ok := n.trees[p].Get(key); ok {
		return true
	}
	return n.quar.holds(p, key)
}

// stage records the new state of key. delta is published after commit.
func (tx *txn) stage(key []byte, s crdt.State, delta crdt.State, stamp crdt.Timestamp) {
	c, ok := tx.staged[string(key)]
	if !ok {
		c = &change{key: bytes.Clone(key), part: partitionOf(key, tx.n.cfg.Partitions)}
		tx.staged[string(key)] = c
		tx.order = append(tx.order, c)
	}
	c.state, c.encoded, c.drop, c.remote = s, nil, false, tx.remote
	tx.count(stateKey(key), s)
	if !tx.remote {
		tx.durable = true
	}
	c.stamp = stamp
	if delta != nil {
		// Each delta is below s, so their join is too, across a kind
		// change within the batch as well. c.delta is the batch's own.
		if c.delta == nil {
			c.delta = delta.Clone()
		} else {
			c.delta = crdt.Join(c.delta, delta)
		}
	}
}

// stageHint records the new hint state of key (a key of a partition this
// node does not hold); it is written under hintPrefix and handed off later.
func (tx *txn) stageHint(key []byte, s crdt.State) {
	tx.durable = true
	tx.count(hintKey(key), s)
	c := &change{key: bytes.Clone(key), part: partitionOf(key, tx.n.cfg.Partitions), state: s, hint: true}
	tx.staged["h\x00"+string(key)] = c
	tx.order = append(tx.order, c)
}

// dropHint deletes the hint of key.
func (tx *txn) dropHint(key []byte) {
	c := &change{key: bytes.Clone(key), part: partitionOf(key, tx.n.cfg.Partitions), hint: true, drop: true, quiet: true}
	tx.staged["h\x00"+string(key)] = c
	tx.order = append(tx.order, c)
}

// getHint returns the hint state of key as of this batch, or nil.
func (tx *txn) getHint(key []byte) (crdt.State, error) {
	return tx.getSide("h\x00", key, hintKey(key), "hint")
}

// getOwn returns this node's durable record of its own contributions to
// key (see ownPrefix), or nil.
func (tx *txn) getOwn(key []byte) (crdt.State, error) {
	return tx.getSide("o\x00", key, ownKey(key), "own record")
}

// getSide returns a state kept beside key's own (its hint, its own record)
// as of this batch, or nil: staged under tag+key, stored under dk.
func (tx *txn) getSide(tag string, key []byte, dk ds.Key, what string) (crdt.State, error) {
	if c, ok := tx.staged[tag+string(key)]; ok {
		if c.drop {
			return nil, nil
		}
		return c.state, nil
	}
	b, err := loadRaw(tx.ctx, tx.n.store, dk)
	if err != nil || b == nil {
		return nil, err
	}
	s, err := crdt.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: stored %s of %q: %v", ErrStore, what, key, err)
	}
	return s, nil
}

// localBase returns the state a local operation on key starts from: cur
// merged with this node's own record, so the operation continues this
// node's counter entry and dots wherever cur came from (its store, a
// holder's answer, a hint) and however stale it is. Only under placement:
// with full replication a node's own store always has its own history.
func (tx *txn) localBase(key []byte, cur crdt.State) (crdt.State, error) {
	if tx.n.cfg.Replication == 0 {
		return cur, nil
	}
	own, err := tx.getOwn(key)
	if err != nil {
		return nil, err
	}
	return joinStates(cur, own), nil
}

// recordOwn stages this node's own part of next, the state its local
// operation produced, in the same batch as the operation itself.
func (tx *txn) recordOwn(key []byte, next crdt.State) {
	if tx.n.cfg.Replication == 0 {
		return
	}
	own := crdt.Own(next, tx.n.self)
	if own == nil {
		return
	}
	tx.count(ownKey(key), own)
	k := "o\x00" + string(key)
	if c, ok := tx.staged[k]; ok {
		c.state = own
		return
	}
	c := &change{key: bytes.Clone(key), part: partitionOf(key, tx.n.cfg.Partitions), state: own, own: true, quiet: true}
	tx.staged[k] = c
	tx.order = append(tx.order, c)
}

// stageDrop stages the deletion of key's state, quietly: its partition
// moved to other holders that have it all, or its tombstone is collected.
func (tx *txn) stageDrop(key []byte) {
	c := &change{key: bytes.Clone(key), part: partitionOf(key, tx.n.cfg.Partitions), drop: true, quiet: true}
	tx.staged[string(key)] = c
	tx.order = append(tx.order, c)
}

// count adds what storing s under dk takes to the batch's quota bytes.
// A restaged key is counted again: the estimate errs high, never low.
func (tx *txn) count(dk ds.Key, s crdt.State) {
	if tx.n.disk.quota.enabled() {
		tx.quotaBytes += entryBytes(dk, crdt.Encode(s))
	}
}

// storeFull returns ErrStoreFull when the store is below its disk floor,
// or at its quota counting what this batch staged so far.
func (tx *txn) storeFull() error {
	g := tx.n.disk
	switch {
	case g.floorFull():
		return g.errFull()
	case g.quota.full() || g.quota.over(tx.quotaBytes):
		return g.quota.errFull()
	}
	return nil
}

// refuseWrite returns ErrStoreFull if the store cannot take local
// operation op on cur. At the quota (not below the disk floor) a delete of
// a live register value is let through: it makes room (see quota.go).
func (tx *txn) refuseWrite(op localOp, cur crdt.State) error {
	err := tx.storeFull()
	if err == nil || !op.frees || tx.n.disk.floorFull() {
		return err
	}
	if r, ok := cur.(*crdt.LWW); ok {
		if _, live := r.Value(); live {
			return nil
		}
	}
	return err
}

// mergeRemote merges a state received from a peer into key and reports
// whether the local state changed. It joins by crdt.Join, so states of
// different kinds or kind generations for one key resolve alike on every
// replica: the higher rank wins whole.
//
// While the store is full (see diskGuard) or at its quota (see
// storeQuota; what this batch staged counts) the state is not stored and
// counted instead: anti-entropy brings it once space returns.
func (tx *txn) mergeRemote(key []byte, remote crdt.State) (bool, error) {
	if tx.storeFull() != nil {
		tx.refused++
		tx.n.disk.refused.Add(1)
		return false, nil
	}
	cur, err := tx.get(key)
	if err != nil {
		return false, err
	}
	quiet := false
	next := joinStates(cur, remote)
	if cur != nil && (next == cur || bytes.Equal(crdt.Encode(cur), crdt.Encode(next))) {
		// Unchanged, but a quarantined key the peer also holds is
		// confirmed: staged again, it returns to the tree.
		if !tx.n.quar.holds(partitionOf(key, tx.n.cfg.Partitions), key) {
			return false, nil
		}
		quiet = true
	}
	tx.remote = true
	defer func() { tx.remote = false }()
	if tx.n.retain.Collectable(next, tx.n.cfg.Now().UnixNano()) {
		// Already past its grace: stored, it would only be collected
		// again, and sent back to a peer that collected it.
		if cur == nil {
			return false, nil
		}
		tx.stageDrop(key)
		tx.n.stats.tombstonesCollected.Add(1)
		_, wasTomb := retention.TombstoneWall(cur)
		tx.staged[string(key)].quiet = wasTomb // a value gone is a delete watchers see
		return true, nil
	}
	tx.stage(key, next, nil, crdt.Timestamp{})
	tx.staged[string(key)].quiet = quiet
	return !quiet, nil
}

// mergeHandedOff merges a state handed off by a non-holder (or a hint of
// this node's own, for a partition it now holds). Unlike state received by
// gossip or anti-entropy, the other holders have not seen it, so the merged
// state is gossiped to them.
//
// While the store is full it fails with ErrStoreFull, so its sender keeps
// the hint and hands it off again later.
func (tx *txn) mergeHandedOff(key []byte, s crdt.State) error {
	if err := tx.storeFull(); err != nil {
		return err
	}
	if tx.n.retain.Old(s, tx.n.cfg.Now().UnixNano()) {
		// A register write older than the grace, for a key this holder
		// lacks, may have been deleted and collected since: as with
		// gossip, only anti-entropy from a holder may bring it back.
		if cur, err := tx.get(key); err != nil || cur == nil {
			return err
		}
	}
	before := tx.refused
	changed, err := tx.mergeRemote(key, s)
	if tx.refused > before {
		// The batch reached the quota: the sender must keep its hint.
		return tx.n.disk.quota.errFull()
	}
	if err != nil || !changed {
		return err
	}
	c := tx.staged[string(key)]
	c.delta = c.state.Clone()
	return nil
}

// commit writes every staged change in one synced datastore batch.
func (tx *txn) commit() error {
	if len(tx.order) == 0 && len(tx.unindex) == 0 && len(tx.meta) == 0 {
		return nil
	}
	b, err := tx.n.store.Batch(tx.ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStore, err)
	}
	for _, c := range tx.order {
		dk := stateKey(c.key)
		switch {
		case c.hint:
			dk = hintKey(c.key)
		case c.own:
			dk = ownKey(c.key)
		}
		if c.drop {
			err = b.Delete(tx.ctx, dk)
		} else {
			c.encoded = crdt.Encode(c.state)
			err = b.Put(tx.ctx, dk, c.encoded)
			tx.bytes += len(dk.String()) + len(c.encoded)
		}
		if err == nil && !c.hint && !c.own {
			err = tx.reindex(b, c)
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrStore, err)
		}
	}
	if err := tx.commitSide(b); err != nil {
		return err
	}
	if err := b.Commit(tx.ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrStore, err)
	}
	return nil
}

// commitSide adds the batch's index deletions and node records to b.
func (tx *txn) commitSide(b ds.Batch) error {
	for _, k := range tx.unindex {
		if err := b.Delete(tx.ctx, k); err != nil {
			return fmt.Errorf("%w: %v", ErrStore, err)
		}
	}
	for k, v := range tx.meta {
		if err := b.Put(tx.ctx, ds.NewKey(k), v); err != nil {
			return fmt.Errorf("%w: %v", ErrStore, err)
		}
	}
	return nil
}

// putMeta stages a node record (not a key of the mesh) in this batch.
func (tx *txn) putMeta(k string, v []byte) {
	if tx.meta == nil {
		tx.meta = make(map[string][]byte)
	}
	tx.meta[k] = v
}

// reindex keeps the tombstone index in step with c: a new tombstone gets
// its entry, and the entry of a stored tombstone that c replaces goes, so
// the sweep does not wade through keys written again since their delete.
func (tx *txn) reindex(b ds.Batch, c *change) error {
	wall, isTomb := retention.TombstoneWall(c.state)
	if old, ok := tx.tombs[string(c.key)]; ok && (!isTomb || old != wall) {
		if err := b.Delete(tx.ctx, tombKey(old, c.key)); err != nil {
			return err
		}
	}
	if isTomb && !c.drop {
		return b.Put(tx.ctx, tombKey(wall, c.key), []byte{})
	}
	return nil
}
