package crdt

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
)

// Counter is a PN-counter: per node, the total of its increments (p) and of
// its decrements (n). Merge takes the per-node maximum, so deltas (which
// carry the node's new totals, not the change) are idempotent. The zero
// value is a counter at 0, ready to use.
type Counter struct {
	gen     Timestamp      // kind generation
	entries []counterEntry // sorted by node; never both p and n zero
}

type counterEntry struct {
	node NodeID
	p, n uint64
}

// Kind returns KindCounter.
func (c *Counter) Kind() Kind { return KindCounter }

// Generation returns the counter's kind generation.
func (c *Counter) Generation() Timestamp { return c.gen }

// Clone returns a copy of c.
func (c *Counter) Clone() State { return &Counter{gen: c.gen, entries: slices.Clone(c.entries)} }

func (c *Counter) find(node NodeID) (int, bool) {
	return slices.BinarySearchFunc(c.entries, node, func(e counterEntry, n NodeID) int { return cmp.Compare(e.node, n) })
}

// Add adds n (which may be negative) on behalf of node and returns the delta.
// Each node's totals saturate at 2^64-1 rather than wrap, because a wrapped
// total would lose to the old one under max-merge.
func (c *Counter) Add(node NodeID, n int64) *Counter {
	if n == 0 {
		return &Counter{gen: c.gen}
	}
	i, ok := c.find(node)
	if !ok {
		c.entries = slices.Insert(c.entries, i, counterEntry{node: node})
	}
	e := &c.entries[i]
	if n > 0 {
		e.p = addSat(e.p, uint64(n))
	} else {
		e.n = addSat(e.n, uint64(-(n+1))+1) // no overflow at MinInt64
	}
	return &Counter{gen: c.gen, entries: []counterEntry{*e}}
}

func addSat(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}

// Value returns the sum of increments minus decrements, clamped to the
// int64 range; Sum says when it had to clamp.
func (c *Counter) Value() int64 {
	v, _ := c.Sum()
	return v
}

// Sum returns the sum of increments minus decrements, exactly, or, with
// ErrCounterRange, the nearest int64 when the sum is outside the range.
// Totals are added in 128 bits, so no number of nodes can wrap them.
func (c *Counter) Sum() (int64, error) {
	var p, n uint128
	for _, e := range c.entries {
		p = p.add(e.p)
		n = n.add(e.n)
	}
	if !p.less(n) {
		d := p.sub(n)
		if d.hi != 0 || d.lo > math.MaxInt64 {
			return math.MaxInt64, ErrCounterRange
		}
		return int64(d.lo), nil
	}
	d := n.sub(p)
	if d.hi != 0 || d.lo > 1<<63 {
		return math.MinInt64, ErrCounterRange
	}
	return int64(-d.lo), nil // -d.lo wraps to MinInt64 for d.lo = 1<<63, as it should
}

// CheckAdd reports, with ErrCounterRange, whether Add(node, n) would take
// the counter's value out of the int64 range or saturate node's own total
// (where the increment would be partly lost). A caller refuses such an
// increment rather than wrap.
func (c *Counter) CheckAdd(node NodeID, n int64) error {
	if n == 0 {
		return nil
	}
	var e counterEntry
	if i, ok := c.find(node); ok {
		e = c.entries[i]
	}
	if (n > 0 && e.p > math.MaxUint64-uint64(n)) || (n < 0 && e.n > math.MaxUint64-(uint64(-(n+1))+1)) {
		return ErrCounterRange
	}
	next := c.Clone().(*Counter)
	next.Add(node, n)
	_, err := next.Sum()
	return err
}

// uint128 is an unsigned 128-bit integer, for exact counter sums.
type uint128 struct{ hi, lo uint64 }

func (a uint128) add(b uint64) uint128 {
	lo, carry := bits.Add64(a.lo, b, 0)
	return uint128{a.hi + carry, lo}
}

func (a uint128) sub(b uint128) uint128 {
	lo, borrow := bits.Sub64(a.lo, b.lo, 0)
	return uint128{a.hi - b.hi - borrow, lo}
}

func (a uint128) less(b uint128) bool {
	return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo)
}

// Merge merges o into c, per node the maximum of each total. It does not
// allocate unless o knows a node c does not, or is of a later generation
// (which wins whole).
func (c *Counter) Merge(o *Counter) {
	switch g := o.gen.Compare(c.gen); {
	case g > 0:
		c.gen, c.entries = o.gen, slices.Clone(o.entries)
		return
	case g < 0 || c == o:
		return
	}
	missing := 0
	i := 0
	for _, oe := range o.entries {
		for i < len(c.entries) && c.entries[i].node < oe.node {
			i++
		}
		if i < len(c.entries) && c.entries[i].node == oe.node {
			e := &c.entries[i]
			e.p, e.n = max(e.p, oe.p), max(e.n, oe.n)
		} else {
			missing++
		}
	}
	if missing == 0 {
		return
	}
	out := make([]counterEntry, 0, len(c.entries)+missing)
	i = 0
	for _, oe := range o.entries {
		for i < len(c.entries) && c.entries[i].node < oe.node {
			out = append(out, c.entries[i])
			i++
		}
		if i < len(c.entries) && c.entries[i].node == oe.node {
			continue // already merged above
		}
		out = append(out, oe)
	}
	c.entries = append(out, c.entries[i:]...)
}

// Counter body: entries sorted by node, each node, p, n.
func (c *Counter) appendBody(dst []byte) []byte {
	dst = appendUvarint(dst, uint64(len(c.entries)))
	for _, e := range c.entries {
		dst = appendU64(dst, uint64(e.node))
		dst = appendUvarint(dst, e.p)
		dst = appendUvarint(dst, e.n)
	}
	return dst
}

func (r *reader) counter() *Counter {
	c := &Counter{}
	k := r.count(8 + 1 + 1)
	if k > 0 {
		c.entries = make([]counterEntry, 0, k)
	}
	for i := 0; i < k && r.err == nil; i++ {
		e := counterEntry{node: NodeID(r.u64()), p: r.uvarint(), n: r.uvarint()}
		if r.err != nil {
			break
		}
		if i > 0 && e.node <= c.entries[i-1].node {
			r.malformed("counter nodes not strictly increasing")
		}
		if e.p == 0 && e.n == 0 {
			r.malformed("counter entry with zero totals")
		}
		c.entries = append(c.entries, e)
	}
	return c
}
