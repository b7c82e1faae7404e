package antientropy

import "github.com/gossipmesh/gossipmesh/sync/merkle"

// coverage is the set of nodes whose records a session has already served.
// A peer can name the same keys many times over (a node and its
// descendants, a node again after a forced retry); each key's record is
// still sent at most once per session, so what a peer can draw from a
// session is bounded by what the local side holds, not by how often it
// asks.
type coverage struct {
	nodes  map[Node]struct{}
	depths map[uint32]*depthSet // by partition: depths holding a covered node
}

// depthSet is a bitmap of the depths 0..MaxDepth.
type depthSet [2]uint64

func (d *depthSet) set(depth uint8)      { d[depth/64] |= 1 << (depth % 64) }
func (d *depthSet) has(depth uint8) bool { return d[depth/64]&(1<<(depth%64)) != 0 }

// prefixAt is the prefix of key hash kh at depth d.
func prefixAt(kh uint64, d uint8) uint64 {
	if d == 0 {
		return 0
	}
	return kh >> (64 - uint(d))
}

func (c *coverage) add(n Node) {
	if c.nodes == nil {
		c.nodes = map[Node]struct{}{}
		c.depths = map[uint32]*depthSet{}
	}
	c.nodes[n] = struct{}{}
	ds := c.depths[n.Partition]
	if ds == nil {
		ds = &depthSet{}
		c.depths[n.Partition] = ds
	}
	ds.set(n.Depth)
}

// covers reports whether n or one of its ancestors was served.
func (c *coverage) covers(n Node) bool {
	ds := c.depths[n.Partition]
	if ds == nil {
		return false
	}
	for d := uint8(0); d <= n.Depth; d++ {
		if ds.has(d) {
			if _, ok := c.nodes[Node{Partition: n.Partition, Depth: d, Prefix: n.Prefix >> (n.Depth - d)}]; ok {
				return true
			}
		}
	}
	return false
}

// deeper reports whether a node below depth d of partition p was served,
// so that the entries of a node at depth d must be checked one by one.
func (c *coverage) deeper(p uint32, d uint8) bool {
	ds := c.depths[p]
	if ds == nil || d == merkle.MaxDepth {
		return false
	}
	for e := d + 1; e <= merkle.MaxDepth; e++ {
		if ds.has(e) {
			return true
		}
	}
	return false
}

// coversKey reports whether a served node below depth d holds key hash kh.
func (c *coverage) coversKey(p uint32, kh uint64, d uint8) bool {
	ds := c.depths[p]
	if ds == nil {
		return false
	}
	for e := d + 1; e <= merkle.MaxDepth; e++ {
		if ds.has(e) {
			if _, ok := c.nodes[Node{Partition: p, Depth: e, Prefix: prefixAt(kh, e)}]; ok {
				return true
			}
		}
	}
	return false
}
