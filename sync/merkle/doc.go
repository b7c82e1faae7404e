// Package merkle is the Merkle tree that anti-entropy compares: one tree per
// partition, over the 64-bit key-hash space (KeyHash), with one leaf entry per
// key holding the digest of the key's encoded CRDT state.
//
// # Hashes
//
// A node's fingerprint is a Sum: the lane-wise sum mod 2^64 of its entries'
// EntrySums (128 bits in all). A parent is the sum of its children, so an
// insert, update or delete changes every ancestor by one addition and never
// rehashes a sibling: Put and Delete are O(depth). Any node of the logical
// binary trie, at any depth 0..64, can be read (Node) and listed (Entries), so
// the reconciliation protocol may pick its own fanout per step.
//
// Sums are not collision resistant against an adversary who chooses states to
// cancel each other (generalised birthday attacks on additive hashes); they
// are against accidents. Peers inside a mesh are authenticated.
//
// # Cost
//
// Build of n keys: O(n log 16) after hashing, with one allocation per key.
// Put/Delete: O(log2(n/16)) additions plus an insert in a ~16-entry bucket;
// resizing (doubling or halving the bucket count) is amortized O(1) per
// operation but a single Put may pay O(n) when it triggers one.
//
// Memory per key: one Entry (8-byte key hash + 16-byte string header + 16-byte
// digest = 40 bytes) plus the key bytes rounded up to a malloc size class,
// plus about 3 bytes of bucket and interior-node overhead (2^b buckets of 24
// bytes and 2^(b+1) interior nodes of 24 bytes, about one bucket per 16 keys),
// plus spare bucket capacity (an eighth plus two entries per bucket after a
// build or resize, up to 2x in buckets grown since). For 32-byte keys that is
// about 90 to 130 bytes per key: about 100 MB for a million keys.
//
// # Example
//
//	t := merkle.New()
//	t.Put([]byte("k"), crdt.DigestOf(encodedState))
//	root := t.Root() // equal on two replicas exactly when they agree
//	s, n := t.Node(4, 0x3) // Sum and key count of the subtree with hash prefix 0011
//	for e := range t.Entries(4, 0x3) { _ = e.Key }
package merkle
