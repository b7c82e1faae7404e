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
	members map[string][]Dot // present members; dots sorted, never empty
	index   map[Dot]string   // dot -> member, the inverse of members
	cc      causalContext
}

// Kind returns KindSet.
func (s *ORSet) Kind() Kind { return KindSet }

// Clone returns a deep copy of s.
func (s *ORSet) Clone() State {
	c := &ORSet{cc: s.cc.clone()}
	if len(s.members) > 0 {
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
	m := string(member)
	delta := &ORSet{members: map[string][]Dot{m: {d}}, index: map[Dot]string{d: m}}
	for _, old := range s.members[m] {
		delta.cc.add(old)
	}
	delta.cc.add(d)
	s.Merge(delta)
	return delta
}

// Remove removes member and returns the delta, which carries only the
// causal context of the removed dots. Removing an absent member returns an
// empty delta.
func (s *ORSet) Remove(member []byte) *ORSet {
	delta := &ORSet{}
	for _, d := range s.members[string(member)] {
		delta.cc.add(d)
	}
	s.Merge(delta)
	return delta
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
// merging a small delta into a large set does not walk the whole set.
func (s *ORSet) Merge(o *ORSet) {
	if s == o {
		return
	}
	// 1. Drop our dots that o has seen and no longer holds (removed there).
	//    Walk whichever is smaller: o's context or our dots.
	if len(s.index) > 0 && !o.cc.empty() {
		if o.cc.dotCount() < uint64(len(s.index)) {
			o.cc.forEachDot(func(d Dot) {
				if m, ok := s.index[d]; ok {
					if _, held := o.index[d]; !held {
						s.removeDot(m, d)
					}
				}
			})
		} else {
			for d, m := range s.index {
				if _, held := o.index[d]; !held && o.cc.contains(d) {
					s.removeDot(m, d)
				}
			}
		}
	}
	// 2. Take o's dots that we have never seen. A dot we have seen but do
	//    not hold was removed here, and stays removed.
	for m, ds := range o.members {
		for _, d := range ds {
			if !s.cc.contains(d) {
				s.addDot(m, d)
			} else if held, ok := s.index[d]; ok && m < held {
				// One dot under two members only comes from a writer
				// reusing a seq (or a hostile peer). Pick the smaller
				// member so replicas still converge.
				s.removeDot(held, d)
				s.addDot(m, d)
			}
		}
	}
	s.cc.merge(&o.cc)
}

func (s *ORSet) addDot(m string, d Dot) {
	if s.members == nil {
		s.members = make(map[string][]Dot)
		s.index = make(map[Dot]string)
	}
	if _, dup := s.index[d]; dup {
		return // a dot names one add; a reused seq is a writer bug
	}
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
