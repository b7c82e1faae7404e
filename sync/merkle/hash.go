package merkle

import (
	"encoding/binary"

	"github.com/gossipmesh/gossipmesh/crdt"
)

// HashSize is the size in bytes of a Hash.
const HashSize = 16

// Hash is the 128-bit fingerprint of a subtree: the encoding of its Sum. Two
// replicas hold identical partitions exactly when their roots are equal (up to
// a 2^-64 birthday bound per comparison).
type Hash [HashSize]byte

// Sum is the additive fingerprint of a set of entries: two independent 64-bit
// lanes, each the sum (mod 2^64) of the entries' lanes. Because it is a sum,
// a subtree's Sum is the sum of its children's Sums, and Put/Delete update
// every ancestor by one addition without rehashing siblings.
type Sum struct {
	Lo, Hi uint64
}

// Add returns s + o, lane by lane.
func (s Sum) Add(o Sum) Sum { return Sum{s.Lo + o.Lo, s.Hi + o.Hi} }

// Sub returns s - o, lane by lane.
func (s Sum) Sub(o Sum) Sum { return Sum{s.Lo - o.Lo, s.Hi - o.Hi} }

// IsZero reports whether s is the Sum of the empty set.
func (s Sum) IsZero() bool { return s.Lo == 0 && s.Hi == 0 }

// Hash returns the wire form of s.
func (s Sum) Hash() Hash {
	var h Hash
	binary.LittleEndian.PutUint64(h[:8], s.Lo)
	binary.LittleEndian.PutUint64(h[8:], s.Hi)
	return h
}

// SumOf decodes a Hash back into its Sum.
func SumOf(h Hash) Sum {
	return Sum{binary.LittleEndian.Uint64(h[:8]), binary.LittleEndian.Uint64(h[8:])}
}

// mix64 is the splitmix64 finalizer, a bijection with full avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// KeyHash returns the position of key in the tree's 64-bit key-hash space.
// It is stable across processes and versions (it is part of the wire
// protocol). It is fast but not collision resistant: colliding keys are
// legal and kept apart (entries are ordered by (KeyHash, key)).
func KeyHash(key []byte) uint64 {
	h := uint64(len(key))*0x9e3779b97f4a7c15 ^ 0x243f6a8885a308d3
	for len(key) >= 8 {
		h = mix64(h ^ binary.LittleEndian.Uint64(key))
		key = key[8:]
	}
	var t [8]byte
	copy(t[:], key)
	return mix64(h ^ binary.LittleEndian.Uint64(t[:]) ^ uint64(len(key))<<59)
}

// EntrySum is the contribution of one (key, digest) entry to its ancestors'
// sums. The key hash is folded in so that equal states under different keys
// contribute differently.
func EntrySum(keyHash uint64, d crdt.Digest) Sum {
	return Sum{
		Lo: binary.LittleEndian.Uint64(d[:8]) ^ mix64(keyHash),
		Hi: binary.LittleEndian.Uint64(d[8:]) ^ mix64(keyHash^0x5851f42d4c957f2d),
	}
}

// Fingerprint is a 32-bit fingerprint of an entry, used when a small subtree
// is listed entry by entry.
func Fingerprint(keyHash uint64, d crdt.Digest) uint32 {
	return uint32(EntrySum(keyHash, d).Hi >> 32)
}
