// Package retention decides when deleted state may be forgotten, and when a
// replica has been away long enough that its old states can no longer be
// trusted. It is pure: time comes in as unix nanoseconds, and the node does
// the I/O (the tombstone index, the sweep, the per-partition session times).
//
// # The rules
//
// Only a register delete leaves something behind that must be collected:
// a tombstone. A tombstone whose own timestamp is more than Grace before
// now is collectable, on every replica alike: the rule depends on the
// tombstone and the grace alone, so two replicas that collect at slightly
// different moments still converge, and a replica that receives an already
// collectable state from a slower peer drops it instead of storing it (a
// collected tombstone is not sent back and forth).
//
// Collecting is safe only if every replica saw the tombstone within the
// grace. A replica whose last completed anti-entropy session for a
// partition is more than Grace ago is Stale for it: it may have missed a
// delete that the others have since collected, so its register states
// older than the grace (Old) are quarantined. It does not serve or send
// them until a session with a fresh holder of the partition shows which of
// them the mesh still has; the others were deleted and collected
// elsewhere, and are dropped. Its newer states, its own recent writes
// among them, are kept and spread as usual.
//
// Counters, sets and multi-value registers have no delete of their own:
// a removed set member leaves only the set's causal context, one entry
// per writer, and there is no tombstone to collect or to resurrect.
//
// A register write or delete can overwrite a key of another kind, at a new
// kind generation (see package crdt). A tombstone of such a generation is
// never collected: a replica that was away may still hold the counter or
// set it replaced, and those carry no time by which Old could tell them
// for old, so only the tombstone itself keeps them from coming back. It
// costs one small record per key deleted after a kind change. Tombstones
// of generation zero only ever outrank registers of generation zero, which
// Old covers, so the rules above stay whole for them; a tombstone's age is
// its write's stamp.
//
// # Example
//
//	p := retention.Policy{Grace: 7 * 24 * time.Hour}
//	if p.Collectable(state, now) { /* delete the key, update the tree */ }
//	if p.Stale(lastSession, now) && p.Old(state, now) { /* quarantine */ }
package retention
