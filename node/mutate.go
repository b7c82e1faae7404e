package node

import (
	"context"
	"fmt"

	"github.com/gossipmesh/gossipmesh/crdt"
)

// opFunc applies one local operation to s and returns its delta.
type opFunc func(s crdt.State, stamp crdt.Timestamp) crdt.State

// localOp is a local write of one key.
type localOp struct {
	key  []byte
	kind crdt.Kind
	// observes: the operation acts on what it sees of other nodes'
	// contributions (a set remove drops the dots it observes), so a view
	// that may lack the key's history must not be acted on. Increments and
	// adds only extend this node's own contribution, which its own record
	// always has.
	observes bool
	// check, when set, may refuse the operation on the state it would
	// apply to (a counter increment out of the int64 range), before
	// anything is stamped or written.
	check func(s crdt.State) error
	// frees: a register delete, let through at the quota when the key
	// holds a value here, since it makes room (see quota.go).
	frees bool
	apply opFunc
}

// Safety under placement. A counter increment, set add or multi-value
// write continues this node's own contribution to the key (its counter
// entry, its dot sequence); built on a view that lacks part of it, the new
// contribution falls below the old one and is lost in the merge. Whatever
// view an operation starts from (this node's store, a holder's answer, a
// hint, nothing), it is merged with the node's own record inside the same
// event-loop step that makes the new contribution and records it again
// (txn.localBase, txn.recordOwn), so no placement change, handoff, restart
// or concurrent operation can make a node reuse a dot or lower a total.
//
// Other holders' states are still merged first, so that returned totals and
// removes see what the mesh has; a holder that does not answer within
// Config.HolderTimeout is skipped. Only an observing operation (a remove)
// is refused when no holder answered and this node's own view may lack the
// key's history: a partition it gained and has not pulled yet, or the first
// SuspectAfter after start.

// mutate runs a local write of one key on the event loop and returns once
// it is durable.
func (n *Node) mutate(ctx context.Context, op localOp) (err error) {
	if err := n.checkKey(op.key); err != nil {
		return err
	}
	start := n.cfg.Now()
	defer func() {
		if err == nil {
			n.stats.putLatency.since(n.cfg.Now, start)
		}
	}()
	p := partitionOf(op.key, n.cfg.Partitions)
	if !n.holds(p) {
		return n.mutateHint(ctx, op)
	}
	var others crdt.State
	if n.cfg.Replication > 0 && op.kind != crdt.KindLWW {
		var err error
		others, err = n.fetchAll(ctx, op.key)
		if err != nil && op.observes && (n.viewIncomplete(p) || n.placementUnsettled()) {
			return fmt.Errorf("%w: partition %d may lack history here: %v", ErrUnavailable, p, err)
		}
	}
	return n.do(ctx, func(tx *txn) error {
		if err := tx.storeFull(); err != nil && !op.frees {
			return err
		}
		if others != nil {
			if _, err := tx.mergeRemote(op.key, others); err != nil {
				return err
			}
		}
		cur, err := tx.get(op.key)
		if err != nil {
			return err
		}
		if n.cfg.Replication > 0 && op.kind != crdt.KindLWW {
			hint, err := tx.getHint(op.key)
			if err != nil {
				return err
			}
			cur = joinStates(cur, hint)
		}
		if cur, err = tx.localBase(op.key, cur); err != nil {
			return err
		}
		if err := tx.refuseWrite(op, cur); err != nil {
			return err
		}
		next, delta, stamp, err := n.applyOp(op, cur)
		if err != nil {
			return err
		}
		tx.stage(op.key, next, delta, stamp)
		tx.recordOwn(op.key, next)
		return nil
	})
}

// placementUnsettled reports whether this node started too recently to
// know the mesh's members: placement computed now could name it the only
// holder of everything.
func (n *Node) placementUnsettled() bool {
	return n.cfg.Replication > 0 && n.cfg.Now().Sub(n.started) < n.cfg.SuspectAfter
}

// Kind changes (see package crdt, "Kinds and generations"). A register
// write or delete on a key of another kind overwrites it: it starts a
// register at a new generation, its own stamp, which outranks the state it
// replaces. Counter, set and multi-value operations start their kind on an
// absent key (generation zero, so concurrent creators merge) and on a
// register tombstone (at the tombstone's generation, which their kind
// outranks); on a live register or another kind they answer ErrWrongKind.
// So no state a member gossips can make a key unwritable: DELETE then the
// operation always works.

// applyOp applies a local operation to a copy of cur (nil: a new state of
// kind). Event loop only: it ticks the clock. Its caller has checked that
// the store takes the write (txn.refuseWrite).
func (n *Node) applyOp(o localOp, cur crdt.State) (next, delta crdt.State, stamp crdt.Timestamp, err error) {
	key, kind := o.key, o.kind
	rekind := false
	switch {
	case cur == nil:
		if cur, err = crdt.New(kind); err != nil {
			return nil, nil, stamp, err
		}
	case cur.Kind() == kind:
		cur = cur.Clone()
	case kind == crdt.KindLWW:
		rekind = true // the generation is the write's stamp, below
	case vacantRegister(cur):
		if cur, err = crdt.NewAt(kind, cur.Generation()); err != nil {
			return nil, nil, stamp, err
		}
	default:
		return nil, nil, stamp, fmt.Errorf("%w: %q is a %s", ErrWrongKind, key, kindName(cur.Kind()))
	}
	physical := n.cfg.Now().UnixNano()
	if err := n.observeState(cur, physical); err != nil {
		return nil, nil, stamp, fmt.Errorf("%w: state of %q is ahead of this node's clock: %w", ErrUnavailable, key, err)
	}
	if rekind {
		if cur, err = crdt.NewAt(kind, n.clock.Now(physical)); err != nil {
			return nil, nil, stamp, err
		}
	}
	if o.check != nil {
		if err := o.check(cur); err != nil {
			return nil, nil, stamp, err
		}
	}
	if rekind {
		stamp = cur.Generation() // the generation's first write: one stamp for both
	} else {
		stamp = n.clock.Now(physical)
	}
	delta = o.apply(cur, stamp)
	if size := len(crdt.Encode(cur)); size > n.cfg.maxStateBytes() {
		return nil, nil, stamp, fmt.Errorf("%w: state of %q would grow to %d bytes", ErrValueTooLarge, key, size)
	}
	n.stats.puts.Add(1)
	return cur, delta, stamp, nil
}

// vacantRegister reports whether s is a register without a value: deleted,
// or never written.
func vacantRegister(s crdt.State) bool {
	r, ok := s.(*crdt.LWW)
	if !ok {
		return false
	}
	_, live := r.Value()
	return !live
}

// observeState makes the clock's next stamp newer than every timestamp in
// s (its generation, a register's write), so a local write never loses to
// the state it starts from, however far ahead within Config.MaxClockDrift
// its writer's clock was. It fails only for a state stamped further ahead
// than the drift limit (checkRecord refuses those from peers): writing
// then would stamp an operation older than what it replaces.
func (n *Node) observeState(s crdt.State, physical int64) error {
	if err := n.clock.Observe(s.Generation(), physical); err != nil {
		return err
	}
	if r, ok := s.(*crdt.LWW); ok {
		return n.clock.Observe(r.Timestamp(), physical)
	}
	return nil
}

// mutateHint writes a key whose partition this node does not hold: it
// starts from the holders' state merged with any local hint and the node's
// own record, and stores the result as a durable hint for hinted handoff.
// A register write needs no holder. An increment or add needs none either
// once this node has an own record of the key (its contribution is known
// here); without one (a store written before own records were kept) it
// needs a holder's answer or a hint, as does every remove.
func (n *Node) mutateHint(ctx context.Context, op localOp) error {
	var remote crdt.State
	var fetchErr error
	if op.kind == crdt.KindLWW {
		remote, fetchErr = n.fetch(ctx, op.key)
	} else {
		remote, fetchErr = n.fetchAll(ctx, op.key)
	}
	if fetchErr != nil && op.observes {
		return fetchErr
	}
	err := n.do(ctx, func(tx *txn) error {
		hint, err := tx.getHint(op.key)
		if err != nil {
			return err
		}
		// Data of a partition being handed over is still here.
		local, err := tx.get(op.key)
		if err != nil {
			return err
		}
		own, err := tx.getOwn(op.key)
		if err != nil {
			return err
		}
		if hint == nil && local == nil && own == nil && fetchErr != nil && op.kind != crdt.KindLWW {
			return fetchErr
		}
		base, err := tx.localBase(op.key, joinStates(joinStates(hint, remote), local))
		if err != nil {
			return err
		}
		// A hint only adds to the store: no delete is let through here.
		if err := tx.storeFull(); err != nil {
			return err
		}
		next, _, _, err := n.applyOp(op, base)
		if err != nil {
			return err
		}
		tx.stageHint(op.key, next)
		tx.recordOwn(op.key, next)
		return nil
	})
	if err == nil {
		n.kickHandoff()
	}
	return err
}
