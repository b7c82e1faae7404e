package node

import (
	"bytes"
	"context"
	"fmt"
	"iter"

	"github.com/gossipmesh/gossipmesh/crdt"
)

func (n *Node) checkKey(key []byte) error {
	switch {
	case len(key) == 0:
		return ErrInvalidKey
	case len(key) > n.cfg.MaxKeyBytes:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrKeyTooLarge, len(key), n.cfg.MaxKeyBytes)
	}
	return nil
}

func (n *Node) checkValue(v []byte) error {
	if len(v) > n.cfg.MaxValueBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooLarge, len(v), n.cfg.MaxValueBytes)
	}
	return nil
}

// read loads the committed state of key and checks its kind. For a key
// whose partition this node does not hold, a holder answers, merged with
// this node's own hint.
func (n *Node) read(ctx context.Context, key []byte, kind crdt.Kind) (crdt.State, error) {
	if err := n.checkKey(key); err != nil {
		return nil, err
	}
	if n.closed.Load() {
		return nil, ErrClosed
	}
	n.stats.gets.Add(1)
	defer n.stats.getLatency.since(n.cfg.Now, n.cfg.Now())
	var s crdt.State
	if n.holds(partitionOf(key, n.cfg.Partitions)) {
		if n.quarantined(key) {
			return nil, fmt.Errorf("%w: %q is older than the tombstone grace and waits for a fresh holder to confirm it", ErrUnavailable, key)
		}
		b, err := loadState(ctx, n.store, key)
		if err != nil {
			return nil, err
		}
		if b != nil {
			if s, err = crdt.Decode(b); err != nil {
				return nil, fmt.Errorf("%w: stored state of %q: %v", ErrStore, key, err)
			}
		}
		if n.refusesRemote() {
			// This holder may lack what it refused: the other holders'
			// states are merged in, when any answers.
			if remote, err := n.fetchAll(ctx, key); err == nil {
				s = joinStates(s, remote)
			}
		}
	} else {
		remote, fetchErr := n.fetch(ctx, key)
		b, err := loadRaw(ctx, n.store, hintKey(key))
		if err != nil {
			return nil, err
		}
		var hint crdt.State
		if b != nil {
			if hint, err = crdt.Decode(b); err != nil {
				return nil, fmt.Errorf("%w: stored hint of %q: %v", ErrStore, key, err)
			}
		}
		if fetchErr != nil && hint == nil {
			return nil, fetchErr
		}
		s = joinStates(hint, remote)
	}
	if s == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	if s.Kind() != kind {
		return nil, fmt.Errorf("%w: %q is a %s", ErrWrongKind, key, kindName(s.Kind()))
	}
	return s, nil
}

// Put sets key to value (last-writer-wins register), over a value of any
// other kind too. It returns once the write is durable in the local store;
// the delta is then gossiped.
func (n *Node) Put(ctx context.Context, key, value []byte) error {
	if err := n.checkValue(value); err != nil {
		return err
	}
	value = bytes.Clone(value)
	return n.mutate(ctx, localOp{key: key, kind: crdt.KindLWW, apply: func(s crdt.State, ts crdt.Timestamp) crdt.State {
		return s.(*crdt.LWW).Set(value, ts)
	}})
}

// Get returns the value of a register, or ErrNotFound.
func (n *Node) Get(ctx context.Context, key []byte) ([]byte, error) {
	s, err := n.read(ctx, key, crdt.KindLWW)
	if err != nil {
		return nil, err
	}
	v, ok := s.(*crdt.LWW).Value()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	return v, nil
}

// Delete removes a register's value, or a value of any other kind, leaving
// a tombstone that every node collects once Config.TombstoneGrace has
// passed since the delete (a tombstone that replaced another kind is kept:
// see package retention).
//
// At the store's quota (Config.MaxStoreBytes) a delete of a key that holds
// a value is still accepted: it is how room is made. Below the disk floor
// (Config.MinFreeBytes) it fails with ErrStoreFull like every write.
func (n *Node) Delete(ctx context.Context, key []byte) error {
	return n.mutate(ctx, localOp{key: key, kind: crdt.KindLWW, frees: true, apply: func(s crdt.State, ts crdt.Timestamp) crdt.State {
		return s.(*crdt.LWW).Delete(ts)
	}})
}

// Incr adds delta (which may be negative) to a counter and returns the
// counter's new local value. On a deleted or absent key it starts a
// counter; on a value of another kind it returns ErrWrongKind. An increment that would take the value out
// of the int64 range is refused with ErrCounterRange, nothing written.
func (n *Node) Incr(ctx context.Context, key []byte, delta int64) (int64, error) {
	var total int64
	check := func(s crdt.State) error {
		if err := s.(*crdt.Counter).CheckAdd(n.self, delta); err != nil {
			return fmt.Errorf("%w: %d added to %q would take it out of the int64 range", ErrCounterRange, delta, key)
		}
		return nil
	}
	err := n.mutate(ctx, localOp{key: key, kind: crdt.KindCounter, check: check, apply: func(s crdt.State, _ crdt.Timestamp) crdt.State {
		c := s.(*crdt.Counter)
		d := c.Add(n.self, delta)
		total = c.Value() // in range: checked
		return d
	}})
	return total, err
}

// Counter returns a counter's value; ErrNotFound if it was never written.
func (n *Node) Counter(ctx context.Context, key []byte) (int64, error) {
	s, err := n.read(ctx, key, crdt.KindCounter)
	if err != nil {
		return 0, err
	}
	v, err := s.(*crdt.Counter).Sum()
	if err != nil {
		// Each node's increments were in range, their sum is not.
		return v, fmt.Errorf("%w: the merged value of %q is beyond %d", ErrCounterRange, key, v)
	}
	return v, nil
}

// SAdd adds member to the set at key (add wins over a concurrent remove).
// On a deleted or absent key it starts a set; on a value of another kind
// it returns ErrWrongKind.
func (n *Node) SAdd(ctx context.Context, key, member []byte) error {
	if err := n.checkValue(member); err != nil {
		return err
	}
	member = bytes.Clone(member)
	return n.mutate(ctx, localOp{key: key, kind: crdt.KindSet, apply: func(s crdt.State, _ crdt.Timestamp) crdt.State {
		return s.(*crdt.ORSet).Add(n.self, member)
	}})
}

// SRem removes member from the set at key, as observed here.
func (n *Node) SRem(ctx context.Context, key, member []byte) error {
	member = bytes.Clone(member)
	return n.mutate(ctx, localOp{key: key, kind: crdt.KindSet, observes: true, apply: func(s crdt.State, _ crdt.Timestamp) crdt.State {
		return s.(*crdt.ORSet).Remove(member)
	}})
}

// SMembers returns the members of the set at key, sorted.
func (n *Node) SMembers(ctx context.Context, key []byte) ([][]byte, error) {
	s, err := n.read(ctx, key, crdt.KindSet)
	if err != nil {
		return nil, err
	}
	return s.(*crdt.ORSet).Members(), nil
}

// WriteMV writes value to the multi-value register at key, superseding
// every value this node has seen; concurrent writes elsewhere stay siblings.
func (n *Node) WriteMV(ctx context.Context, key, value []byte) error {
	if err := n.checkValue(value); err != nil {
		return err
	}
	value = bytes.Clone(value)
	return n.mutate(ctx, localOp{key: key, kind: crdt.KindMVRegister, apply: func(s crdt.State, _ crdt.Timestamp) crdt.State {
		return s.(*crdt.MVRegister).Write(n.self, value)
	}})
}

// GetMV returns the sibling values of a multi-value register, sorted.
func (n *Node) GetMV(ctx context.Context, key []byte) ([][]byte, error) {
	s, err := n.read(ctx, key, crdt.KindMVRegister)
	if err != nil {
		return nil, err
	}
	return s.(*crdt.MVRegister).Values(), nil
}

// Keys yields every key starting with prefix that holds a live value of
// any kind (deleted registers are skipped), in the datastore's order: byte
// order with pebble (keys are stored hex-encoded, which keeps their
// order), no particular order with the memory store (Memory) or another
// Config.Datastore. Sort them if order matters there.
func (n *Node) Keys(ctx context.Context, prefix []byte) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		stop := fmt.Errorf("stop")
		err := scanStates(ctx, n.store, func(key, state []byte) error {
			if !bytes.HasPrefix(key, prefix) || n.quarantined(key) {
				return nil
			}
			if s, err := crdt.Decode(state); err == nil {
				if r, ok := s.(*crdt.LWW); ok && r.Deleted() {
					return nil
				}
			}
			if !yield(key, nil) {
				return stop
			}
			return nil
		})
		if err != nil && err != stop {
			yield(nil, err)
		}
	}
}

// StateRecord is one key's raw CRDT state, for backup and restore.
type StateRecord struct {
	Key   []byte
	State []byte // canonical crdt encoding
}

// ExportStates yields every stored key state, tombstones included, so a
// restore also carries deletes.
func (n *Node) ExportStates(ctx context.Context) iter.Seq2[StateRecord, error] {
	return func(yield func(StateRecord, error) bool) {
		stop := fmt.Errorf("stop")
		err := scanStates(ctx, n.store, func(key, state []byte) error {
			if n.quarantined(key) {
				return nil // may have been deleted elsewhere: not restored anywhere
			}
			if !yield(StateRecord{Key: key, State: state}, nil) {
				return stop
			}
			return nil
		})
		if err != nil && err != stop {
			yield(StateRecord{}, err)
		}
	}
}

// MergeStates merges raw states into the store (CRDT merge: idempotent and
// safe on a live mesh). Every record is validated before anything is
// written; the call returns once the merge is durable. At the store's
// quota it fails with ErrStoreFull, possibly after merging part of recs
// (kept: merging them again is harmless); run it again once there is room.
func (n *Node) MergeStates(ctx context.Context, recs []StateRecord) error {
	decoded := make([]crdt.State, len(recs))
	for i, r := range recs {
		s, err := n.checkRecord(r.Key, r.State)
		if err != nil {
			return fmt.Errorf("node: state of %q: %w", r.Key, err)
		}
		decoded[i] = s
	}
	return n.do(ctx, func(tx *txn) error {
		if err := tx.storeFull(); err != nil {
			return err // not skipped: the caller must know
		}
		tx.durable = true // a restore is acknowledged to its caller
		before := tx.refused
		for i, r := range recs {
			if _, err := tx.mergeRemote(r.Key, decoded[i]); err != nil {
				return err
			}
		}
		if tx.refused > before {
			// The quota was reached within the batch: what was merged
			// stays (merging it again is harmless), the caller retries.
			return tx.n.disk.quota.errFull()
		}
		return nil
	})
}

func kindName(k crdt.Kind) Kind {
	switch k {
	case crdt.KindLWW:
		return KindRegister
	case crdt.KindMVRegister:
		return KindMVRegister
	case crdt.KindCounter:
		return KindCounter
	case crdt.KindSet:
		return KindSet
	}
	return Kind(k.String())
}
