package crdt

import "errors"

// Sentinel errors. Functions wrap them with %w and context, so match them
// with errors.Is, never by string.
var (
	// ErrClockDrift is returned by Clock.Observe for a remote timestamp too
	// far ahead of the local physical clock. Accepting it would drag every
	// later local timestamp into the future (an easy abuse by one bad peer).
	ErrClockDrift = errors.New("crdt: remote clock too far in the future")

	// ErrKindMismatch is returned when merging states of different kinds.
	ErrKindMismatch = errors.New("crdt: kind mismatch")

	// ErrTruncated is returned by Decode when the input ends early.
	ErrTruncated = errors.New("crdt: truncated encoding")

	// ErrTooLarge is returned by Decode for input longer than MaxEncodedSize,
	// or with a count that cannot fit in the bytes that remain.
	ErrTooLarge = errors.New("crdt: encoding too large")

	// ErrUnknownKind is returned for a kind byte this version does not know.
	ErrUnknownKind = errors.New("crdt: unknown kind")

	// ErrUnknownVersion is returned for an encoding version this version of
	// the package does not know.
	ErrUnknownVersion = errors.New("crdt: unknown encoding version")

	// ErrMalformed is returned by Decode for input that is well framed but
	// not the canonical encoding of a valid state (unsorted entries,
	// duplicates, non-minimal varints, trailing bytes, dots outside the
	// causal context, ...). Rejecting it keeps "same state => same bytes".
	ErrMalformed = errors.New("crdt: malformed encoding")

	// ErrCounterRange is returned by Counter.Sum when the counter's value
	// is outside the int64 range (merged totals of several nodes can take
	// it there), and by Counter.CheckAdd for an increment that would take
	// it there or saturate the node's own total.
	ErrCounterRange = errors.New("crdt: counter value out of the int64 range")
)
