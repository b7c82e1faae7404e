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
// State of the same kind and generation that, merged into any replica, has
// the same effect as merging the full state it came from. Node gossips
// deltas and runs anti-entropy on full states; both go through Join, which
// is commutative, associative and idempotent, so loss, duplication and
// reordering are harmless.
//
// # Kinds and generations
//
// A key holds one state, and members may disagree on its kind: two nodes
// create it as different types, or one overwrites a counter with a
// register write. Join makes that a lattice too. Every state carries a
// kind generation G, a Timestamp: zero for a state written the ordinary
// way, the stamp of the operation for one that changed the key's kind.
// States are ordered by (G, kind byte); only states of equal (G, kind)
// merge, as their type does; otherwise the greater wins whole and the
// other's data is dropped. The order is total across ranks and each rank
// is a lattice, so Join is commutative, associative and idempotent, and
// every replica ends with the same state whatever the order of arrival.
// The empty register at generation zero is the least state.
//
// A local operation that changes a key's kind stamps a new G from the
// hybrid clock, after observing the G it replaces, so it outranks that
// state (node IDs break ties). Two nodes that concurrently create the same
// counter or set on an absent key both use G = 0 and merge, losing no
// increment. An operation of another kind on a register tombstone keeps
// the tombstone's G: every other kind's byte is above the register's, so
// it outranks the tombstone, and concurrent creators after the same delete
// still merge.
//
// What a concurrent kind change loses: whatever was written, on a replica
// that had not yet seen the change, to the state it replaced (increments,
// adds, register writes of the old generation); and of two concurrent
// changes, or of two creations of different kinds on an absent key, all
// of the lower-ranked one. The data is dropped, never mixed, so every
// replica drops the same.
//
// A state at a non-zero generation is never collected (see Collect).
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
//	merged := crdt.Join(&b, got) // any kinds: the lattice join
//	v, _ := merged.(*crdt.LWW).Value() // "on"
//
// See the package examples for the other types.
package crdt
