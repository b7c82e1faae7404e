package crdt

import "crypto/sha256"

// DigestSize is the size in bytes of a state digest.
const DigestSize = 16

// Digest is a fixed-size fingerprint of a state's canonical encoding. Merkle
// leaves are built from digests, so two replicas hold the same state for a key
// exactly when their digests are equal (up to a 2^-64 birthday bound over the
// key space, far below the rate of disk or memory errors).
type Digest [DigestSize]byte

// DigestOf returns the digest of an encoded state: the first DigestSize bytes
// of its SHA-256. SHA-256 is hardware-accelerated on the machines we target
// and leaves no room for an adversary to forge collisions.
func DigestOf(encoded []byte) Digest {
	sum := sha256.Sum256(encoded)
	var d Digest
	copy(d[:], sum[:DigestSize])
	return d
}
