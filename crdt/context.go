package crdt

import (
	"cmp"
	"slices"
)

// Dot names one write event: the Seq-th event of Node on this key. Seq
// starts at 1. A node serializes its own writes to a key, so its next dot is
// always one past the highest Seq of its own in the causal context.
type Dot struct {
	Node NodeID
	Seq  uint64
}

func compareDots(a, b Dot) int {
	if c := cmp.Compare(a.Node, b.Node); c != 0 {
		return c
	}
	return cmp.Compare(a.Seq, b.Seq)
}

// nodeCtx is the part of a causal context for one node: every Seq in
// 1..max, plus the sorted seqs in extra (all > max+1: a gap separates them).
type nodeCtx struct {
	node  NodeID
	max   uint64
	extra []uint64
}

// causalContext is the set of dots a replica has seen, kept compact: a
// version vector (max per node) plus a dot cloud (extra) for the
// non-contiguous dots that deltas bring. Nodes are sorted, so the
// in-memory form is already canonical. The zero value is empty.
type causalContext struct {
	nodes []nodeCtx
}

func (c *causalContext) empty() bool { return len(c.nodes) == 0 }

func (c *causalContext) find(n NodeID) (int, bool) {
	return slices.BinarySearchFunc(c.nodes, n, func(e nodeCtx, n NodeID) int { return cmp.Compare(e.node, n) })
}

// maxSeq returns the highest seq of node n in the context (0 if none).
func (c *causalContext) maxSeq(n NodeID) uint64 {
	i, ok := c.find(n)
	if !ok {
		return 0
	}
	e := &c.nodes[i]
	if len(e.extra) > 0 {
		return e.extra[len(e.extra)-1]
	}
	return e.max
}

func (c *causalContext) contains(d Dot) bool {
	i, ok := c.find(d.Node)
	if !ok {
		return false
	}
	e := &c.nodes[i]
	if d.Seq <= e.max {
		return d.Seq != 0
	}
	_, ok = slices.BinarySearch(e.extra, d.Seq)
	return ok
}

// contextOf returns the compact causal context holding exactly dots (seqs
// >= 1). It sorts dots in place. One pass and at most three allocations:
// cheaper than add per dot on the write path, where every op builds one.
func contextOf(dots []Dot) causalContext {
	if len(dots) == 0 {
		return causalContext{}
	}
	slices.SortFunc(dots, compareDots)
	dots = slices.Compact(dots)
	groups := 1
	for i := 1; i < len(dots); i++ {
		if dots[i].Node != dots[i-1].Node {
			groups++
		}
	}
	c := causalContext{nodes: make([]nodeCtx, 0, groups)}
	var backing []uint64
	for i := 0; i < len(dots); {
		e := nodeCtx{node: dots[i].Node}
		for i < len(dots) && dots[i].Node == e.node && dots[i].Seq == e.max+1 {
			e.max++
			i++
		}
		start := len(backing)
		for i < len(dots) && dots[i].Node == e.node {
			if backing == nil {
				backing = make([]uint64, 0, len(dots))
			}
			backing = append(backing, dots[i].Seq)
			i++
		}
		if len(backing) > start {
			// Capped, so growing one node's extras never clobbers the next.
			e.extra = backing[start:len(backing):len(backing)]
		}
		c.nodes = append(c.nodes, e)
	}
	return c
}

// add inserts one dot and keeps the context compact.
func (c *causalContext) add(d Dot) {
	if d.Seq == 0 {
		return
	}
	i, ok := c.find(d.Node)
	if !ok {
		c.nodes = slices.Insert(c.nodes, i, nodeCtx{node: d.Node})
	}
	e := &c.nodes[i]
	switch {
	case d.Seq <= e.max:
		return
	case d.Seq == e.max+1:
		e.max++
		e.compact()
	default:
		if j, found := slices.BinarySearch(e.extra, d.Seq); !found {
			e.extra = slices.Insert(e.extra, j, d.Seq)
		}
	}
}

// compact folds the leading extras that continue max into max.
func (e *nodeCtx) compact() {
	k := 0
	for k < len(e.extra) && e.extra[k] <= e.max+1 {
		e.max = max(e.max, e.extra[k])
		k++
	}
	if k > 0 {
		e.extra = append(e.extra[:0], e.extra[k:]...)
	}
	if len(e.extra) == 0 {
		e.extra = nil
	}
}

// merge sets c to the union of c and o. It allocates only when o holds
// something c has not seen in a shape c cannot absorb in place.
func (c *causalContext) merge(o *causalContext) {
	if c == o {
		return
	}
	for _, oe := range o.nodes {
		i, ok := c.find(oe.node)
		if !ok {
			c.nodes = slices.Insert(c.nodes, i, nodeCtx{node: oe.node, max: oe.max, extra: slices.Clone(oe.extra)})
			continue
		}
		e := &c.nodes[i]
		if oe.max <= e.max && len(oe.extra) == 0 {
			continue
		}
		if oe.max > e.max {
			e.max = oe.max
		}
		// Extras that continue our max fold in without allocating: the
		// usual case of a delta carrying a writer's next dot.
		extra := oe.extra
		for len(extra) > 0 && extra[0] <= e.max+1 {
			e.max = max(e.max, extra[0])
			extra = extra[1:]
		}
		if len(extra) > 0 {
			e.extra = unionSorted(e.extra, extra)
		}
		e.compact()
	}
}

// unionSorted returns the sorted union of a and b, reusing a when b adds
// nothing new.
func unionSorted(a, b []uint64) []uint64 {
	newCount := 0
	for _, x := range b {
		if _, ok := slices.BinarySearch(a, x); !ok {
			newCount++
		}
	}
	if newCount == 0 {
		return a
	}
	out := make([]uint64, 0, len(a)+newCount)
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

func (c *causalContext) clone() causalContext {
	if len(c.nodes) == 0 {
		return causalContext{}
	}
	nodes := make([]nodeCtx, len(c.nodes))
	for i, e := range c.nodes {
		nodes[i] = nodeCtx{node: e.node, max: e.max, extra: slices.Clone(e.extra)}
	}
	return causalContext{nodes: nodes}
}

// dotCount returns how many dots the context holds, saturating at MaxUint64.
// Merge uses it to choose between walking the context and walking a set.
func (c *causalContext) dotCount() uint64 {
	var n uint64
	for _, e := range c.nodes {
		add := e.max + uint64(len(e.extra))
		if add < e.max || n+add < n {
			return ^uint64(0)
		}
		n += add
	}
	return n
}

// forEachDot calls fn for every dot in the context.
func (c *causalContext) forEachDot(fn func(Dot)) {
	for _, e := range c.nodes {
		for s := uint64(1); s <= e.max && s != 0; s++ {
			fn(Dot{e.node, s})
		}
		for _, s := range e.extra {
			fn(Dot{e.node, s})
		}
	}
}

func (c *causalContext) appendEncoding(dst []byte) []byte {
	dst = appendUvarint(dst, uint64(len(c.nodes)))
	for _, e := range c.nodes {
		dst = appendU64(dst, uint64(e.node))
		dst = appendUvarint(dst, e.max)
		dst = appendUvarint(dst, uint64(len(e.extra)))
		prev := e.max + 1
		for _, s := range e.extra {
			dst = appendUvarint(dst, s-prev-1) // gap; always >= 0
			prev = s
		}
	}
	return dst
}

func (r *reader) causalContext() causalContext {
	n := r.count(10)
	if r.err != nil || n == 0 {
		return causalContext{}
	}
	c := causalContext{nodes: make([]nodeCtx, 0, n)}
	for i := 0; i < n && r.err == nil; i++ {
		e := nodeCtx{node: NodeID(r.u64()), max: r.seq()}
		if i > 0 && e.node <= c.nodes[i-1].node {
			r.malformed("causal context nodes not strictly increasing")
		}
		k := r.count(1)
		if r.err == nil && e.max == 0 && k == 0 {
			r.malformed("empty causal context entry")
		}
		if k > 0 {
			e.extra = make([]uint64, 0, k)
		}
		prev := e.max + 1
		for j := 0; j < k && r.err == nil; j++ {
			gap := r.uvarint()
			if gap > maxSeq || prev+1+gap > maxSeq { // no wrap: prev <= maxSeq+1
				r.malformed("seq out of range")
			}
			s := prev + 1 + gap
			e.extra = append(e.extra, s)
			prev = s
		}
		c.nodes = append(c.nodes, e)
	}
	return c
}
