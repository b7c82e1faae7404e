// Package crdt is the pure core of gossipmesh: a hybrid logical clock and
// the delta-state CRDTs that hold every value, with their merge, canonical
// binary encoding and digest.
//
// The package does no I/O, starts no goroutines, never reads the wall clock
// and uses no global randomness: time comes in as unix nanoseconds and the
// node's event loop owns every value. That keeps simulations deterministic
// and tests fast.
//
// # Types
//
//   - LWW: last-writer-wins register ordered by hybrid Timestamp; delete
//     writes a tombstone that Collect drops after a grace period.
//   - MVRegister: multi-value register; concurrent writes are kept as
//     siblings until a write that has seen them all.
//   - Counter: PN-counter.
//   - ORSet: add-wins observed-remove set; removes leave no tombstones.
//
// Every mutator changes the state in place and returns a delta: a small
// State of the same kind that, merged into any replica, has the same effect
// as merging the full state it came from. Node gossips deltas and runs
// anti-entropy on full states; both go through Merge, which is commutative,
// associative and idempotent, so loss, duplication and reordering are
// harmless.
//
// Encode is canonical: equal states give equal bytes, whatever the order of
// the merges that built them, so DigestOf(Encode(s)) can feed Merkle trees.
// Decode accepts only canonical input and never panics on hostile input.
//
// # Example
//
//	clk := crdt.NewClock(crdt.NodeIDFromBytes([]byte(peerID)), 5*time.Second)
//
//	var a, b crdt.LWW
//	delta := a.Set([]byte("on"), clk.Now(nowNanos)) // nowNanos: the node's injected clock
//	wire := crdt.Encode(delta) // gossip this
//
//	got, err := crdt.Decode(wire)
//	if err != nil {
//		return err // errors.Is(err, crdt.ErrMalformed), ...
//	}
//	if err := crdt.Merge(&b, got); err != nil {
//		return err
//	}
//	v, _ := b.Value() // "on"
//
// See the package examples for the other types.
package crdt
