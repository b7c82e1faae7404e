package crdt

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// NodeID identifies a replica. It is the tie-breaker between equal hybrid
// timestamps and the owner of dots in causal contexts.
type NodeID uint64

// NodeIDFromBytes hashes an identifier (e.g. a libp2p peer ID) into a NodeID:
// the first 8 bytes, big-endian, of its SHA-256. The hash is stable across
// versions and platforms, so every replica derives the same NodeID for a peer.
func NodeIDFromBytes(b []byte) NodeID {
	sum := sha256.Sum256(b)
	return NodeID(binary.BigEndian.Uint64(sum[:8]))
}

// Timestamp is a hybrid logical clock reading. Timestamps from different
// nodes never compare equal, so last-writer-wins has a total order.
type Timestamp struct {
	Wall    int64  // physical component, unix nanoseconds
	Logical uint32 // orders events within the same Wall
	Node    NodeID // tie-breaker between nodes
}

// Compare returns -1, 0 or +1 ordering t and u by Wall, then Logical, then
// Node.
func (t Timestamp) Compare(u Timestamp) int {
	switch {
	case t.Wall < u.Wall:
		return -1
	case t.Wall > u.Wall:
		return 1
	case t.Logical < u.Logical:
		return -1
	case t.Logical > u.Logical:
		return 1
	case t.Node < u.Node:
		return -1
	case t.Node > u.Node:
		return 1
	}
	return 0
}

// IsZero reports whether t is the zero Timestamp, which marks "never written".
func (t Timestamp) IsZero() bool { return t == Timestamp{} }

// String formats t as wall.logical@node for logs.
func (t Timestamp) String() string {
	return fmt.Sprintf("%d.%d@%016x", t.Wall, t.Logical, uint64(t.Node))
}

// Clock is a hybrid logical clock (Kulkarni et al.). It is not safe for
// concurrent use: the node's event loop owns it. Physical time is passed in
// by the caller, which keeps the clock deterministic under simulation.
type Clock struct {
	node     NodeID
	maxDrift int64 // nanoseconds; 0 means unlimited
	last     Timestamp
}

// NewClock returns a clock for node. Observe rejects remote timestamps more
// than maxDrift ahead of the local physical time; maxDrift 0 means no limit.
// A negative maxDrift is treated as 0.
func NewClock(node NodeID, maxDrift time.Duration) *Clock {
	if maxDrift < 0 {
		maxDrift = 0
	}
	return &Clock{node: node, maxDrift: int64(maxDrift), last: Timestamp{Node: node}}
}

// Now returns a new local timestamp strictly greater than every timestamp
// the clock has issued or observed, even if physical goes backwards.
//
// When the logical counter would overflow (2^32 events within one wall
// nanosecond), the wall component is advanced by one nanosecond instead:
// monotonicity matters more than staying glued to physical time. At the
// very end of the int64 range the clock saturates and repeats its last
// reading; that is ~year 2262 or an unbounded remote clock (use maxDrift).
func (c *Clock) Now(physical int64) Timestamp {
	switch {
	case physical > c.last.Wall:
		c.last.Wall, c.last.Logical = physical, 0
	case c.last.Logical < math.MaxUint32:
		c.last.Logical++
	case c.last.Wall < math.MaxInt64:
		c.last.Wall, c.last.Logical = c.last.Wall+1, 0
	}
	return c.last
}

// Observe merges a remote timestamp, so the next Now is greater than it.
// If remote.Wall is more than maxDrift ahead of physical it returns an error
// wrapping ErrClockDrift and leaves the clock unchanged.
func (c *Clock) Observe(remote Timestamp, physical int64) error {
	if c.maxDrift > 0 && remote.Wall > physical &&
		uint64(remote.Wall)-uint64(physical) > uint64(c.maxDrift) { // unsigned: no overflow
		return fmt.Errorf("%w: remote wall %d is %v ahead of local %d (limit %v)",
			ErrClockDrift, remote.Wall, time.Duration(remote.Wall-physical),
			physical, time.Duration(c.maxDrift))
	}
	if remote.Wall > c.last.Wall || (remote.Wall == c.last.Wall && remote.Logical > c.last.Logical) {
		// Adopt (Wall, Logical) but keep our Node: the next Now bumps
		// Logical past remote, and node IDs then never matter for order.
		c.last.Wall, c.last.Logical = remote.Wall, remote.Logical
	}
	return nil
}

// Last returns the clock's high-water mark: the greatest (Wall, Logical)
// issued or observed, stamped with this clock's node. The next Now is
// strictly greater than it and than every observed remote timestamp.
func (c *Clock) Last() Timestamp { return c.last }

// Node returns the clock's node ID.
func (c *Clock) Node() NodeID { return c.node }
