package crdt

import (
	"bytes"
	"slices"
)

// ORSet is an add-wins observed-remove set, in the optimized delta-state
// form: each present member carries the dots of the adds that put it there,
// and a causal context records every dot seen. Removing a member drops its
// dots but keeps them in the context, so a removed member leaves no
// tombstone, and an add concurrent with the remove (a dot the remover never
// saw) survives: add wins. The zero value is an empty set, ready to use.
type ORSet struct {
	gen     Timestamp        // kind generation
	members map[string][]Dot // present members; dots sorted, never empty
	index   map[Dot]string   // dot -> member, the inverse of members
	cc      causalContext
}

// Kind returns KindSet.
func (s *ORSet) Kind() Kind { return KindSet }

// Generation returns the set's kind generation.
func (s *ORSet) Generation() Timestamp { return s.gen }

// Clone returns a deep copy of s.
func (s *ORSet) Clone() State {
	c := &ORSet{gen: s.gen, cc: s.cc.clone()}
	if len(s.members) > 0 {
		s.ensureIndex()
		c.members = make(map[string][]Dot, len(s.members))
		for m, ds := range s.members {
			c.members[m] = slices.Clone(ds)
		}
		c.index = make(map[Dot]string, len(s.index))
		for d, m := range s.index {
			c.index[d] = m
		}
	}
	return c
}

// Add adds member on behalf of node and returns the delta: the new dot, and
// a context covering it and the member's previous dots (which it replaces).
func (s *ORSet) Add(node NodeID, member []byte) *ORSet {
	d := Dot{Node: node, Seq: s.cc.maxSeq(node) + 1}
	s.ensureIndex()
	old := s.members[string(member)]
	var m string
	if len(old) > 0 {
		m = s.index[old[0]] // reuse the stored key: no allocation on re-add
	} else {
		m = string(member)
	}
	var buf [4]Dot
	delta := &ORSet{
		gen:     s.gen,
		members: map[string][]Dot{m: {d}},
		cc:      contextOf(append(append(buf[:0], old...), d)),
	}
	// Apply directly rather than through Merge: same result (the property
	// tests check before⊔delta == after), half the map operations.
	for _, od := range old {
		delete(s.index, od)
	}
	s.initMaps()
	s.members[m] = append(old[:0], d) // old is ours alone: reuse it
	s.index[d] = m
	s.cc.add(d)
	return delta
}

// Remove removes member and returns the delta, which carries only the
// causal context of the removed dots. Removing an absent member returns an
// empty delta.
func (s *ORSet) Remove(member []byte) *ORSet {
	delta := &ORSet{gen: s.gen}
	old, ok := s.members[string(member)]
	if !ok {
		return delta
	}
	s.ensureIndex()
	delta.cc = contextOf(slices.Clone(old))
	for _, d := range old {
		delete(s.index, d)
	}
	delete(s.members, string(member))
	return delta
}

// ensureIndex builds the dot index if it is missing. Deltas are born
// without one (they are merged from far more often than into), so the
// index is built the first time something is merged into them.
func (s *ORSet) ensureIndex() {
	if s.index != nil || len(s.members) == 0 {
		return
	}
	s.index = make(map[Dot]string, len(s.members))
	for m, ds := range s.members {
		for _, d := range ds {
			s.index[d] = m
		}
	}
}

func (s *ORSet) initMaps() {
	if s.members == nil {
		s.members = make(map[string][]Dot)
	}
	if s.index == nil {
		s.index = make(map[Dot]string)
	}
}

// holds reports whether member m of s carries dot d.
func (s *ORSet) holds(m string, d Dot) bool {
	_, ok := slices.BinarySearchFunc(s.members[m], d, compareDots)
	return ok
}

// Members returns the members, sorted bytewise.
func (s *ORSet) Members() [][]byte {
	keys := make([]string, 0, len(s.members))
	for m := range s.members {
		keys = append(keys, m)
	}
	slices.Sort(keys)
	out := make([][]byte, len(keys))
	for i, m := range keys {
		out[i] = []byte(m)
	}
	return out
}

// Contains reports whether member is in the set.
func (s *ORSet) Contains(member []byte) bool {
	_, ok := s.members[string(member)]
	return ok
}

// Len returns the number of members.
func (s *ORSet) Len() int { return len(s.members) }

// Merge merges o into s. Cost is O(|o| + min(|s|, dots in o's context)), so
// merging a small delta into a large set does not walk the whole set. A set
// of a later generation wins whole.
func (s *ORSet) Merge(o *ORSet) {
	switch g := o.gen.Compare(s.gen); {
	case g > 0:
		*s = *o.Clone().(*ORSet)
		return
	case g < 0 || s == o:
		return
	}
	s.ensureIndex()
	// 1. Take o's dots that we have never seen. A dot we have seen but do
	//    not hold was removed here, and stays removed.
	var contested []Dot // held by both sides under different members
	for m, ds := range o.members {
		for _, d := range ds {
			if !s.cc.contains(d) {
				s.addDot(m, d)
			} else if held, ok := s.index[d]; ok && m != held {
				// One dot under two members only comes from a writer
				// reusing a seq (or a hostile peer). Keep it under the
				// smaller member so replicas still converge.
				contested = append(contested, d)
				if m < held {
					s.removeDot(held, d)
					s.addDot(m, d)
				}
			}
		}
	}
	// 2. Drop our dots that o has seen and no longer holds (removed there).
	//    (Adding first lets a re-added member keep its slice.)
	//    Walk whichever is smaller: o's context or our dots.
	if len(s.index) > 0 && !o.cc.empty() {
		if o.cc.dotCount() < uint64(len(s.index)) {
			o.cc.forEachDot(func(d Dot) {
				if m, ok := s.index[d]; ok && !o.holds(m, d) && !slices.Contains(contested, d) {
					s.removeDot(m, d)
				}
			})
		} else {
			for d, m := range s.index {
				if o.cc.contains(d) && !o.holds(m, d) && !slices.Contains(contested, d) {
					s.removeDot(m, d)
				}
			}
		}
	}
	s.cc.merge(&o.cc)
}

// addDot adds a dot that s does not hold (callers check s.cc or remove it
// first).
func (s *ORSet) addDot(m string, d Dot) {
	s.initMaps()
	ds := s.members[m]
	i, _ := slices.BinarySearchFunc(ds, d, compareDots)
	s.members[m] = slices.Insert(ds, i, d)
	s.index[d] = m
}

func (s *ORSet) removeDot(m string, d Dot) {
	delete(s.index, d)
	ds := s.members[m]
	if i, ok := slices.BinarySearchFunc(ds, d, compareDots); ok {
		ds = slices.Delete(ds, i, i+1)
	}
	if len(ds) == 0 {
		delete(s.members, m)
	} else {
		s.members[m] = ds
	}
}

// ORSet body: causal context, then members sorted bytewise, each with its
// dots sorted.
func (s *ORSet) appendBody(dst []byte) []byte {
	dst = s.cc.appendEncoding(dst)
	keys := make([]string, 0, len(s.members))
	for m := range s.members {
		keys = append(keys, m)
	}
	slices.Sort(keys)
	dst = appendUvarint(dst, uint64(len(keys)))
	for _, m := range keys {
		dst = appendUvarint(dst, uint64(len(m)))
		dst = append(dst, m...)
		ds := s.members[m]
		dst = appendUvarint(dst, uint64(len(ds)))
		for _, d := range ds {
			dst = appendDot(dst, d)
		}
	}
	return dst
}

func (r *reader) orSet() *ORSet {
	s := &ORSet{cc: r.causalContext()}
	n := r.count(1 + 1 + 8 + 1) // member length, dot count, one dot
	if n > 0 {
		s.members = make(map[string][]Dot, n)
		s.index = make(map[Dot]string, n)
	}
	var prev []byte
	for i := 0; i < n && r.err == nil; i++ {
		mb := r.bytes()
		k := r.count(8 + 1)
		if r.err != nil {
			break
		}
		if i > 0 && bytes.Compare(prev, mb) >= 0 {
			r.malformed("set members not strictly increasing")
		}
		if k == 0 {
			r.malformed("set member without dots")
		}
		prev = mb
		m := string(mb)
		ds := make([]Dot, 0, k)
		for j := 0; j < k && r.err == nil; j++ {
			d := r.dot()
			if r.err != nil {
				break
			}
			if j > 0 && compareDots(ds[j-1], d) >= 0 {
				r.malformed("set dots not strictly increasing")
			}
			if !s.cc.contains(d) {
				r.malformed("set dot outside causal context")
			}
			if _, dup := s.index[d]; dup {
				r.malformed("set dot held by two members")
			}
			ds = append(ds, d)
			s.index[d] = m
		}
		s.members[m] = ds
	}
	return s
}
