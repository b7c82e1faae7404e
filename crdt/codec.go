package crdt

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// EncodingVersion is the first byte of the encoding of every state at
// generation zero: the layout of every release before kind generations,
// kept byte for byte, so stored states, digests and older peers are
// unaffected by them.
const EncodingVersion = 1

// EncodingVersionGen is the first byte of the encoding of a state at a
// non-zero generation: the EncodingVersion layout with the generation
// between the kind byte and the body. Each state has exactly one of the two
// encodings. Bump past it (and keep decoders for both) if the body format
// ever changes.
const EncodingVersionGen = 2

// MaxEncodedSize bounds Decode's input, so a hostile peer cannot make a node
// allocate without limit. It is well above the default 1 MiB value limit.
const MaxEncodedSize = 64 << 20

// Encode returns the canonical encoding of s:
//
//	[EncodingVersion][kind byte][body]                  generation zero
//	[EncodingVersionGen][kind byte][generation][body]   otherwise
//
// Equal states encode to equal bytes whatever order their history was merged
// in: every collection is sorted and causal contexts are kept compact. That
// is what lets Merkle trees compare replicas by DigestOf(Encode(s)).
//
// Encode panics if s is not one of this package's types (a programming
// error: State has no other implementations).
func Encode(s State) []byte {
	return AppendEncode(make([]byte, 0, sizeHint(s)), s)
}

// AppendEncode appends the canonical encoding of s to dst.
func AppendEncode(dst []byte, s State) []byte {
	switch v := s.(type) {
	case *LWW:
		return v.appendBody(appendHeader(dst, KindLWW, v.gen))
	case *MVRegister:
		return v.appendBody(appendHeader(dst, KindMVRegister, v.gen))
	case *Counter:
		return v.appendBody(appendHeader(dst, KindCounter, v.gen))
	case *ORSet:
		return v.appendBody(appendHeader(dst, KindSet, v.gen))
	}
	panic(fmt.Sprintf("crdt: cannot encode state of type %T", s))
}

func appendHeader(dst []byte, k Kind, gen Timestamp) []byte {
	if gen.IsZero() {
		return append(dst, EncodingVersion, byte(k))
	}
	return appendTimestamp(append(dst, EncodingVersionGen, byte(k)), gen)
}

// timestampSize bounds an encoded Timestamp.
const timestampSize = 8 + 5 + 8

func sizeHint(s State) int {
	switch v := s.(type) {
	case *LWW:
		return 2 + timestampSize + 1 + timestampSize + 5 + len(v.value)
	case *Counter:
		return 2 + timestampSize + 1 + len(v.entries)*24
	}
	return 64
}

// Decode parses an encoding produced by Encode. It never panics and accepts
// only canonical input, so Encode(Decode(b)) == b for every accepted b.
// Errors wrap one of ErrTooLarge (input over MaxEncodedSize), ErrTruncated
// (input ends early, including a count larger than the bytes left could
// hold, which is checked before allocating), ErrUnknownVersion,
// ErrUnknownKind or ErrMalformed.
//
// The decoded state does not alias b.
func Decode(b []byte) (State, error) {
	if len(b) > MaxEncodedSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxEncodedSize)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: missing version byte", ErrTruncated)
	}
	if b[0] != EncodingVersion && b[0] != EncodingVersionGen {
		return nil, fmt.Errorf("%w: %d", ErrUnknownVersion, b[0])
	}
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: missing kind byte", ErrTruncated)
	}
	// One copy up front; values and members then alias it instead of
	// costing an allocation each.
	r := reader{b: bytes.Clone(b[2:])}
	var gen Timestamp
	if b[0] == EncodingVersionGen {
		gen = r.generation()
	}
	var s State
	switch k := Kind(b[1]); k {
	case KindLWW:
		s = r.lww()
	case KindMVRegister:
		s = r.mvRegister()
	case KindCounter:
		s = r.counter()
	case KindSet:
		s = r.orSet()
	default:
		return nil, fmt.Errorf("%w: %d", ErrUnknownKind, uint8(k))
	}
	if r.err == nil && len(r.b) != 0 {
		r.malformed(fmt.Sprintf("%d trailing bytes", len(r.b)))
	}
	if r.err != nil {
		return nil, r.err
	}
	setGeneration(s, gen)
	return s, nil
}

func appendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

func appendU64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

func appendBytes(dst, b []byte) []byte {
	return append(appendUvarint(dst, uint64(len(b))), b...)
}

func appendTimestamp(dst []byte, t Timestamp) []byte {
	dst = appendU64(dst, uint64(t.Wall))
	dst = appendUvarint(dst, uint64(t.Logical))
	return appendU64(dst, uint64(t.Node))
}

func appendDot(dst []byte, d Dot) []byte {
	return appendUvarint(appendU64(dst, uint64(d.Node)), d.Seq)
}

// reader decodes a body. The first error sticks and turns every later read
// into a no-op returning zero values, so decoders check r.err only where a
// zero value could make them loop or allocate.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) malformed(why string) { r.fail(fmt.Errorf("%w: %s", ErrMalformed, why)) }

func (r *reader) truncated(what string) { r.fail(fmt.Errorf("%w: reading %s", ErrTruncated, what)) }

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.truncated("byte")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) u64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.truncated("fixed64")
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n == 0:
		r.truncated("varint")
		return 0
	case n < 0:
		r.malformed("varint overflows 64 bits")
		return 0
	case n > 1 && r.b[n-1] == 0:
		r.malformed("non-minimal varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a collection length and checks, before the caller allocates,
// that the remaining input could hold that many items of at least minSize
// bytes each.
func (r *reader) count(minSize int) int {
	n := r.uvarint()
	if r.err != nil {
		return 0
	}
	if n > uint64(len(r.b)/minSize) {
		r.fail(fmt.Errorf("%w: count %d needs at least %d bytes each, %d left",
			ErrTruncated, n, minSize, len(r.b)))
		return 0
	}
	return int(n)
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.truncated("byte string")
		return nil
	}
	// Full slice expression: an append by a caller can never run into the
	// bytes of the next field.
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) timestamp() Timestamp {
	t := Timestamp{Wall: int64(r.u64())}
	l := r.uvarint()
	if l > 0xFFFFFFFF {
		r.malformed("logical clock overflows 32 bits")
	}
	t.Logical = uint32(l)
	t.Node = NodeID(r.u64())
	return t
}

// generation reads the generation of an EncodingVersionGen encoding: never
// zero (that state has the EncodingVersion encoding) nor before the epoch
// (generation zero is the least).
func (r *reader) generation() Timestamp {
	g := r.timestamp()
	switch {
	case r.err != nil:
	case g.IsZero():
		r.malformed("zero generation in a generation encoding")
	case g.Wall < 0:
		r.malformed("generation before the epoch")
	}
	return g
}

// maxSeq bounds every seq a decoder accepts, so that a node's next seq
// (max+1) can never wrap around, whatever a hostile peer sends. 2^62 writes
// by one node to one key will not happen.
const maxSeq = 1 << 62

func (r *reader) seq() uint64 {
	s := r.uvarint()
	if s > maxSeq {
		r.malformed("seq out of range")
	}
	return s
}

func (r *reader) dot() Dot {
	d := Dot{Node: NodeID(r.u64()), Seq: r.seq()}
	if r.err == nil && d.Seq == 0 {
		r.malformed("dot with seq 0")
	}
	return d
}
