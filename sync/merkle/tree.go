package merkle

import (
	"cmp"
	"iter"
	"math/bits"
	"slices"

	"github.com/gossipmesh/gossipmesh/crdt"
)

// MaxDepth is the depth of the deepest node: a node at depth d covers every
// key hash whose top d bits equal its prefix.
const MaxDepth = 64

const (
	targetLoad = 16 // entries per bucket after a (re)build
	growLoad   = 32 // average load that triggers a grow
	shrinkLoad = 4  // average load that triggers a shrink
	maxBits    = 24 // at most 16 M buckets
)

// Entry is one key of a tree: its position, the key itself, and the digest of
// its encoded state.
type Entry struct {
	KeyHash uint64
	Key     string
	Digest  crdt.Digest
}

type segNode struct {
	sum   Sum
	count int
}

// Tree is a Merkle tree over the 64-bit key-hash space of one partition.
//
// The logical tree is the complete binary trie over key hashes: node (d, p)
// holds every entry whose key hash has p as its top d bits, and its Sum is the
// sum of its entries' EntrySums. Physically the entries live in 2^b buckets
// selected by the top b bits (b grows and shrinks with Len so that a bucket
// holds about 16 entries), under an array-embedded binary tree of Sums and
// counts over the buckets. Nodes above the bucket level are read in O(1);
// nodes below are summed from one bucket.
//
// The zero Tree is not usable; call New or Build. A Tree is not safe for
// concurrent use.
type Tree struct {
	bits    uint
	buckets [][]Entry
	seg     []segNode // 1-based heap layout: node (d, p) at index 1<<d + p, d <= bits
	n       int
}

// New returns an empty tree.
func New() *Tree {
	t := &Tree{}
	t.reset(0, nil)
	return t
}

// Build returns a tree holding items. If a key appears more than once, the
// last digest wins. Build is O(n log(n / 2^b)) and does one allocation per key
// (a copy of the key) plus a few large ones.
func Build(items iter.Seq2[[]byte, crdt.Digest]) *Tree {
	var all []Entry
	for k, d := range items {
		all = append(all, Entry{KeyHash: KeyHash(k), Key: string(k), Digest: d})
	}
	t := &Tree{}
	t.reset(bitsFor(len(all)), all)
	return t
}

// bitsFor returns the bucket bits for n entries at the target load.
func bitsFor(n int) uint {
	if n <= targetLoad {
		return 0
	}
	b := uint(bits.Len(uint((n - 1) / targetLoad)))
	return min(b, maxBits)
}

func compareEntry(a, b Entry) int {
	if c := cmp.Compare(a.KeyHash, b.KeyHash); c != 0 {
		return c
	}
	return cmp.Compare(a.Key, b.Key)
}

// reset rebuilds the tree with 2^b buckets from all (in any order; the last
// of duplicate keys wins). all is reused as backing storage.
func (t *Tree) reset(b uint, all []Entry) {
	nb := 1 << b
	sizes := make([]int, nb)
	for i := range all {
		sizes[bucketOf(all[i].KeyHash, b)]++
	}
	// Bucket i occupies sorted[counts[i] : counts[i]+sizes[i]], followed by a
	// little spare capacity so that inserts rarely reallocate a bucket.
	counts := make([]int, nb+1)
	for i, n := range sizes {
		counts[i+1] = counts[i] + n + 2 + n/8
	}
	sorted := make([]Entry, counts[nb])
	next := slices.Clone(counts[:nb])
	for _, e := range all {
		i := bucketOf(e.KeyHash, b)
		sorted[next[i]] = e
		next[i]++
	}
	t.bits = b
	t.buckets = make([][]Entry, nb)
	t.seg = make([]segNode, 2*nb)
	t.n = 0
	for i := range nb {
		es := sorted[counts[i] : counts[i]+sizes[i] : counts[i+1]]
		slices.SortStableFunc(es, compareEntry)
		// Drop duplicate keys, keeping the last one given.
		out := es[:0]
		for j := range es {
			if j+1 < len(es) && es[j+1].KeyHash == es[j].KeyHash && es[j+1].Key == es[j].Key {
				continue
			}
			out = append(out, es[j])
		}
		t.buckets[i] = out
		var s Sum
		for _, e := range out {
			s = s.Add(EntrySum(e.KeyHash, e.Digest))
		}
		t.seg[nb+i] = segNode{sum: s, count: len(out)}
		t.n += len(out)
	}
	for i := nb - 1; i >= 1; i-- {
		l, r := t.seg[2*i], t.seg[2*i+1]
		t.seg[i] = segNode{sum: l.sum.Add(r.sum), count: l.count + r.count}
	}
}

func bucketOf(kh uint64, b uint) int {
	if b == 0 {
		return 0
	}
	return int(kh >> (64 - b))
}

// find returns the index of key in its bucket, and whether it is there.
func (t *Tree) find(kh uint64, key []byte) (int, []Entry, bool) {
	es := t.buckets[bucketOf(kh, t.bits)]
	i, ok := slices.BinarySearchFunc(es, kh, func(e Entry, kh uint64) int {
		return cmp.Compare(e.KeyHash, kh)
	})
	if !ok {
		return i, es, false
	}
	for ; i < len(es) && es[i].KeyHash == kh; i++ {
		switch c := cmp.Compare(es[i].Key, string(key)); {
		case c == 0:
			return i, es, true
		case c > 0:
			return i, es, false
		}
	}
	return i, es, false
}

// Put inserts key with digest d, or updates its digest. It is O(b + log 16)
// where 2^b is the bucket count, plus an amortized O(1) share of resizing.
func (t *Tree) Put(key []byte, d crdt.Digest) {
	kh := KeyHash(key)
	i, es, ok := t.find(kh, key)
	b := bucketOf(kh, t.bits)
	if ok {
		old := es[i].Digest
		if old == d {
			return
		}
		es[i].Digest = d
		t.bubble(b, EntrySum(kh, d).Sub(EntrySum(kh, old)), 0)
		return
	}
	t.buckets[b] = slices.Insert(es, i, Entry{KeyHash: kh, Key: string(key), Digest: d})
	t.n++
	t.bubble(b, EntrySum(kh, d), 1)
	if t.n > growLoad<<t.bits && t.bits < maxBits {
		t.resize()
	}
}

// Delete removes key if present. It is O(b + 16) plus an amortized share of
// resizing.
func (t *Tree) Delete(key []byte) {
	kh := KeyHash(key)
	i, es, ok := t.find(kh, key)
	if !ok {
		return
	}
	b := bucketOf(kh, t.bits)
	s := EntrySum(kh, es[i].Digest)
	t.buckets[b] = slices.Delete(es, i, i+1)
	t.n--
	t.bubble(b, Sum{}.Sub(s), -1)
	if t.bits > 0 && t.n < shrinkLoad<<t.bits {
		t.resize()
	}
}

func (t *Tree) resize() {
	all := make([]Entry, 0, t.n)
	for _, es := range t.buckets {
		all = append(all, es...)
	}
	t.reset(bitsFor(t.n), all)
}

func (t *Tree) bubble(b int, delta Sum, dc int) {
	for i := 1<<t.bits + b; i >= 1; i >>= 1 {
		t.seg[i].sum = t.seg[i].sum.Add(delta)
		t.seg[i].count += dc
	}
}

// Get returns the digest stored for key.
func (t *Tree) Get(key []byte) (crdt.Digest, bool) {
	i, es, ok := t.find(KeyHash(key), key)
	if !ok {
		return crdt.Digest{}, false
	}
	return es[i].Digest, true
}

// Root returns the hash of the whole tree; the zero Hash for an empty tree.
func (t *Tree) Root() Hash { return t.seg[1].sum.Hash() }

// RootSum returns the Sum of the whole tree.
func (t *Tree) RootSum() Sum { return t.seg[1].sum }

// Len returns the number of keys.
func (t *Tree) Len() int { return t.n }

// span returns the key-hash range [lo, hi] of node (depth, prefix).
func span(depth uint, prefix uint64) (lo, hi uint64) {
	if depth == 0 {
		return 0, ^uint64(0)
	}
	lo = prefix << (64 - depth)
	return lo, lo | (^uint64(0) >> depth)
}

// bucketRange returns the entries of node (depth, prefix) when the node is
// below the bucket level (depth > bits).
func (t *Tree) bucketRange(depth uint, prefix uint64) []Entry {
	lo, hi := span(depth, prefix)
	es := t.buckets[bucketOf(lo, t.bits)]
	i, _ := slices.BinarySearchFunc(es, lo, func(e Entry, v uint64) int { return cmp.Compare(e.KeyHash, v) })
	j := i
	for j < len(es) && es[j].KeyHash <= hi {
		j++
	}
	return es[i:j]
}

// Node returns the Sum and entry count of node (depth, prefix), 0 <= depth <=
// MaxDepth, prefix < 2^depth. Higher prefix bits are ignored.
func (t *Tree) Node(depth uint, prefix uint64) (Sum, int) {
	depth = min(depth, MaxDepth)
	if depth < 64 {
		prefix &= 1<<depth - 1
	}
	if depth <= t.bits {
		n := t.seg[1<<depth+prefix]
		return n.sum, n.count
	}
	var s Sum
	es := t.bucketRange(depth, prefix)
	for _, e := range es {
		s = s.Add(EntrySum(e.KeyHash, e.Digest))
	}
	return s, len(es)
}

// Entries yields the entries of node (depth, prefix) in (KeyHash, Key) order.
// The tree must not be modified during the iteration.
func (t *Tree) Entries(depth uint, prefix uint64) iter.Seq[Entry] {
	depth = min(depth, MaxDepth)
	if depth < 64 {
		prefix &= 1<<depth - 1
	}
	return func(yield func(Entry) bool) {
		if depth > t.bits {
			for _, e := range t.bucketRange(depth, prefix) {
				if !yield(e) {
					return
				}
			}
			return
		}
		first := prefix << (t.bits - depth)
		last := (prefix + 1) << (t.bits - depth)
		for b := first; b < last; b++ {
			for _, e := range t.buckets[b] {
				if !yield(e) {
					return
				}
			}
		}
	}
}

// All yields every entry in (KeyHash, Key) order.
func (t *Tree) All() iter.Seq[Entry] { return t.Entries(0, 0) }

// Clone returns an independent copy of t.
func (t *Tree) Clone() *Tree {
	c := &Tree{bits: t.bits, n: t.n, seg: slices.Clone(t.seg), buckets: make([][]Entry, len(t.buckets))}
	for i, es := range t.buckets {
		c.buckets[i] = slices.Clone(es)
	}
	return c
}
