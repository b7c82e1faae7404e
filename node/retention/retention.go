package retention

import (
	"math"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
)

// Policy holds the grace period the rules are measured against.
type Policy struct {
	// Grace is how long a delete is kept before it may be collected, and
	// how long a replica may go without a completed session before its old
	// states are quarantined. It must be positive.
	Grace time.Duration
}

// Cutoff is the moment before which a state counts as older than the
// grace: now - Grace, saturating at the start of time.
func (p Policy) Cutoff(now int64) int64 {
	if now < math.MinInt64+int64(p.Grace) {
		return math.MinInt64
	}
	return now - int64(p.Grace)
}

// Collectable reports whether s is a register tombstone of generation
// zero older than the grace, which every replica deletes from its store. Other empty states
// are not: a replica that wrote one keeps it, so one that dropped it on
// arrival would differ from it for good.
func (p Policy) Collectable(s crdt.State, now int64) bool {
	if _, ok := TombstoneWall(s); !ok {
		return false
	}
	_, drop := crdt.Collect(s, now, p.Grace)
	return drop
}

// Old reports whether s is a register state, value or tombstone, written
// before the cutoff: a state that a delete the node missed may have made
// obsolete, and whose tombstone may already be collected elsewhere.
func (p Policy) Old(s crdt.State, now int64) bool {
	r, ok := s.(*crdt.LWW)
	return ok && !r.Timestamp().IsZero() && r.Timestamp().Wall < p.Cutoff(now)
}

// Stale reports whether a replica whose last completed anti-entropy
// session for a partition was at lastSession (0: never) has been away for
// longer than the grace. A replica that never completed one is not stale:
// nothing it holds came from the others, and nothing the others collected
// was ever its to keep.
func (p Policy) Stale(lastSession, now int64) bool {
	return lastSession != 0 && lastSession < p.Cutoff(now)
}

// SweepInterval is how often a node looks for collectable tombstones: an
// eighth of the grace, at least 100 ms and at most a minute, so a
// tombstone outlives its grace by at most that much.
func (p Policy) SweepInterval() time.Duration {
	return min(max(p.Grace/8, 100*time.Millisecond), time.Minute)
}

// TombstoneWall returns the timestamp's wall time of s if s is a register
// tombstone that may be collected (of kind generation zero: see the
// package doc): the time by which a tombstone index orders it. A
// tombstone's age is its write's stamp, not its generation.
func TombstoneWall(s crdt.State) (int64, bool) {
	r, ok := s.(*crdt.LWW)
	if !ok || !r.Deleted() || !r.Generation().IsZero() {
		return 0, false
	}
	return r.Timestamp().Wall, true
}
