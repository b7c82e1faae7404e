package crdt

import "slices"

// Own returns the part of s that node contributed: its counter entry, or
// the dots it issued (those still present, and every one it has seen) in a
// set or multi-value register. LWW registers carry no per-node history, so
// Own returns nil for them, as for a state in which node has no part.
//
// The result is below s in the lattice: merging it into s changes nothing.
// Merging it into any other view of the key is therefore safe, and brings
// that view up to everything node had done when s was current. A node that
// keeps Own of its last local state durably can start its next operation
// from a stale or empty view of the key without reusing a dot or falling
// below a counter total it already gave away.
func Own(s State, node NodeID) State {
	switch v := s.(type) {
	case *Counter:
		if i, ok := v.find(node); ok {
			return &Counter{gen: v.gen, entries: []counterEntry{v.entries[i]}}
		}
	case *ORSet:
		if cc := v.cc.only(node); !cc.empty() {
			out := &ORSet{gen: v.gen, cc: cc}
			for m, ds := range v.members {
				if mine := ownDots(ds, node); len(mine) > 0 {
					out.initMaps()
					out.members[m] = mine
					for _, d := range mine {
						out.index[d] = m
					}
				}
			}
			return out
		}
	case *MVRegister:
		if cc := v.cc.only(node); !cc.empty() {
			out := &MVRegister{gen: v.gen, cc: cc}
			for _, e := range v.entries {
				if e.dot.Node == node {
					out.entries = append(out.entries, e)
				}
			}
			return out
		}
	}
	return nil
}

// ownDots returns the dots of node among ds (sorted by node, then seq).
func ownDots(ds []Dot, node NodeID) []Dot {
	var out []Dot
	for _, d := range ds {
		if d.Node == node {
			out = append(out, d)
		}
	}
	return out
}

// only returns the part of the context that node's dots make up.
func (c *causalContext) only(node NodeID) causalContext {
	i, ok := c.find(node)
	if !ok {
		return causalContext{}
	}
	e := c.nodes[i]
	return causalContext{nodes: []nodeCtx{{node: node, max: e.max, extra: slices.Clone(e.extra)}}}
}
