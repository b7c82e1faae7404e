package crdt

import (
	"cmp"
	"fmt"
	"time"
)

// Kind names a CRDT type. Its value is the kind byte of the encoding, so
// values never change once released.
type Kind uint8

// The CRDT kinds.
const (
	KindLWW        Kind = 1 // last-writer-wins register
	KindMVRegister Kind = 2 // multi-value register
	KindCounter    Kind = 3 // PN-counter
	KindSet        Kind = 4 // add-wins observed-remove set
)

// String returns a short lower-case name, "kind(N)" for unknown kinds.
func (k Kind) String() string {
	switch k {
	case KindLWW:
		return "lww"
	case KindMVRegister:
		return "mvregister"
	case KindCounter:
		return "counter"
	case KindSet:
		return "set"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is a kind this package implements.
func (k Kind) Valid() bool { return k >= KindLWW && k <= KindSet }

// State is any CRDT value: *LWW, *MVRegister, *Counter or *ORSet. Deltas are
// States of the same kind and generation (delta-state CRDTs), so one Join
// serves both full states from anti-entropy and deltas from gossip.
//
// Byte slices inside a state (values, members) are never modified in place,
// so merges and clones share them; callers must not modify slices they pass
// in after the call, nor slices they get back.
type State interface {
	Kind() Kind
	// Generation is the kind generation (see the package doc): zero for a
	// state written the ordinary way, the stamp of the operation that
	// gave the key this kind otherwise.
	Generation() Timestamp
	Clone() State
}

// Compile-time checks that every type is a State.
var (
	_ State = (*LWW)(nil)
	_ State = (*MVRegister)(nil)
	_ State = (*Counter)(nil)
	_ State = (*ORSet)(nil)
)

// New returns the empty state of kind k, or an error wrapping ErrUnknownKind.
func New(k Kind) (State, error) {
	switch k {
	case KindLWW:
		return &LWW{}, nil
	case KindMVRegister:
		return &MVRegister{}, nil
	case KindCounter:
		return &Counter{}, nil
	case KindSet:
		return &ORSet{}, nil
	}
	return nil, fmt.Errorf("%w: %d", ErrUnknownKind, uint8(k))
}

// NewAt returns the empty state of kind k at generation gen: the state a
// local operation that changes a key's kind starts from. gen must not be
// before the epoch (negative Wall): generation zero is the least of all.
func NewAt(k Kind, gen Timestamp) (State, error) {
	if gen.Wall < 0 {
		return nil, fmt.Errorf("%w: generation %v is before the epoch", ErrMalformed, gen)
	}
	s, err := New(k)
	if err != nil {
		return nil, err
	}
	setGeneration(s, gen)
	return s, nil
}

// setGeneration sets the generation of an empty state.
func setGeneration(s State, gen Timestamp) {
	switch v := s.(type) {
	case *LWW:
		v.gen = gen
	case *MVRegister:
		v.gen = gen
	case *Counter:
		v.gen = gen
	case *ORSet:
		v.gen = gen
	}
}

// CompareRank orders two states by generation, then kind byte. Join keeps
// the one that ranks higher whole; states of equal rank merge.
func CompareRank(a, b State) int {
	if c := a.Generation().Compare(b.Generation()); c != 0 {
		return c
	}
	return cmp.Compare(a.Kind(), b.Kind())
}

// Join returns dst ⊔ src, the lattice join across kinds and generations:
// the state of higher rank (CompareRank) wins whole, and states of equal
// rank merge as their type does. It merges into dst in place and returns
// it, unless src ranks higher: then it returns a clone of src and leaves
// dst as it was. A nil state is an absent key: Join(nil, src) is a clone
// of src, Join(dst, nil) is dst. Join is commutative, associative and
// idempotent over every state Decode accepts, so replicas agree whatever
// order states arrive in.
func Join(dst, src State) State {
	switch {
	case src == nil:
		return dst
	case dst == nil:
		return src.Clone()
	}
	switch c := CompareRank(dst, src); {
	case c < 0:
		return src.Clone()
	case c > 0:
		return dst
	}
	if err := Merge(dst, src); err != nil {
		panic(err) // equal rank is equal kind
	}
	return dst
}

// Merge merges src into dst in place: a join of two states of one kind,
// generations included. It returns an error wrapping ErrKindMismatch if
// the kinds differ (dst is then unchanged); use Join for states that may.
func Merge(dst, src State) error {
	switch d := dst.(type) {
	case *LWW:
		if s, ok := src.(*LWW); ok {
			d.Merge(s)
			return nil
		}
	case *MVRegister:
		if s, ok := src.(*MVRegister); ok {
			d.Merge(s)
			return nil
		}
	case *Counter:
		if s, ok := src.(*Counter); ok {
			d.Merge(s)
			return nil
		}
	case *ORSet:
		if s, ok := src.(*ORSet); ok {
			d.Merge(s)
			return nil
		}
	default:
		return fmt.Errorf("%w: unsupported state type %T", ErrUnknownKind, dst)
	}
	return fmt.Errorf("%w: cannot merge %s into %s", ErrKindMismatch, kindOf(src), dst.Kind())
}

func kindOf(s State) string {
	if s == nil {
		return "nil"
	}
	return s.Kind().String()
}

// Equal reports whether a and b hold the same state (same canonical bytes).
func Equal(a, b State) bool {
	return string(Encode(a)) == string(Encode(b))
}

// DigestOfState returns DigestOf(Encode(s)).
func DigestOfState(s State) Digest {
	var buf [256]byte // small states digest without a heap allocation
	return DigestOf(AppendEncode(buf[:0], s))
}

// Collect garbage-collects tombstones, purely as a function of now (unix
// nanoseconds) and grace. drop reports that the key can be deleted from the
// store altogether; out is the state to keep otherwise (today always s).
//
// The caller must make sure every replica has seen the state before it is
// collected. The node does so with package node/retention: it runs Collect
// on register tombstones from an index ordered by time, drops a state that
// is already collectable when it arrives from a slower replica, and a
// replica that has not reconciled a partition for longer than grace
// quarantines its old register states until a fresh holder confirms them
// (no resurrection).
//
// Per kind:
//   - LWW: a tombstone whose Wall is more than grace before now is dropped.
//     A live value is kept forever.
//   - MVRegister: there is no delete, so nothing to collect; the causal
//     context is already compacted to one entry per writer.
//   - Counter: nothing to collect; one entry per node that ever added.
//   - ORSet: a removed member leaves no tombstone (only causal context,
//     compacted to a version vector), so nothing to collect.
//
// Any empty state (equal to New(kind)) is also reported droppable: it
// carries no information. The node only collects register tombstones
// (see retention.Policy.Collectable), so replicas never disagree on an
// empty state one of them wrote.
//
// A state at a non-zero generation is never dropped, tombstone or empty:
// it outranks every state of an older generation, of any kind, and those
// (counters, sets) carry no time by which a replica that was away could
// tell that they are old. Forgetting it could let such a replica bring a
// deleted counter or set back.
func Collect(s State, now int64, grace time.Duration) (out State, drop bool) {
	if grace < 0 {
		grace = 0
	}
	if !s.Generation().IsZero() {
		return s, false
	}
	switch v := s.(type) {
	case *LWW:
		if v.ts.IsZero() {
			return s, true
		}
		if v.deleted && now > v.ts.Wall && uint64(now)-uint64(v.ts.Wall) > uint64(grace) {
			return s, true
		}
	case *MVRegister:
		return s, len(v.entries) == 0 && v.cc.empty()
	case *Counter:
		return s, len(v.entries) == 0
	case *ORSet:
		return s, len(v.members) == 0 && v.cc.empty()
	}
	return s, false
}
