package crdt

import (
	"bytes"
	"slices"
)

// MVRegister is a multi-value register: a write supersedes every value its
// replica has seen, and concurrent writes survive side by side as siblings
// until a later write supersedes them all. It is the optimized
// delta-state version: each sibling carries a dot, and a causal context
// records every dot seen, so a superseded sibling needs no tombstone.
// The zero value is an empty register, ready to use.
type MVRegister struct {
	gen     Timestamp // kind generation
	entries []mvEntry // sorted by dot; every dot is in cc
	cc      causalContext
}

type mvEntry struct {
	dot   Dot
	value []byte
}

// Kind returns KindMVRegister.
func (r *MVRegister) Kind() Kind { return KindMVRegister }

// Generation returns the register's kind generation.
func (r *MVRegister) Generation() Timestamp { return r.gen }

// Clone returns a deep copy of r (sharing the immutable value bytes).
func (r *MVRegister) Clone() State {
	return &MVRegister{gen: r.gen, entries: slices.Clone(r.entries), cc: r.cc.clone()}
}

// Write sets the register to value on behalf of node, superseding every
// sibling r has seen, and returns the delta to gossip. The value is copied.
func (r *MVRegister) Write(node NodeID, value []byte) *MVRegister {
	d := Dot{Node: node, Seq: r.cc.maxSeq(node) + 1}
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	dots := make([]Dot, 0, len(r.entries)+1)
	for _, e := range r.entries {
		dots = append(dots, e.dot) // the siblings this write supersedes
	}
	delta := &MVRegister{gen: r.gen, entries: []mvEntry{{dot: d, value: v}}, cc: contextOf(append(dots, d))}
	r.Merge(delta)
	return delta
}

// Values returns the distinct sibling values, sorted bytewise. It is empty
// for a register never written. The returned slices must not be modified.
func (r *MVRegister) Values() [][]byte {
	out := make([][]byte, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e.value)
	}
	slices.SortFunc(out, bytes.Compare)
	return slices.CompactFunc(out, bytes.Equal)
}

// Merge merges o into r: a sibling survives if the other side holds it too
// or has never seen its dot. It allocates only when o brings new siblings
// or is of a later generation (which wins whole).
func (r *MVRegister) Merge(o *MVRegister) {
	switch g := o.gen.Compare(r.gen); {
	case g > 0:
		*r = *o.Clone().(*MVRegister)
		return
	case g < 0 || r == o:
		return
	}
	kept := r.entries[:0]
	for _, e := range r.entries {
		if j, ok := findMVDot(o.entries, e.dot); ok {
			// Same dot twice only comes from a writer reusing a seq;
			// pick the greater value so merge stays commutative.
			if bytes.Compare(o.entries[j].value, e.value) > 0 {
				e.value = o.entries[j].value
			}
			kept = append(kept, e)
		} else if !o.cc.contains(e.dot) {
			kept = append(kept, e)
		}
	}
	clear(r.entries[len(kept):]) // let dropped values be collected
	r.entries = kept
	var added bool
	for _, e := range o.entries {
		if !r.cc.contains(e.dot) {
			r.entries = append(r.entries, e)
			added = true
		}
	}
	if added {
		slices.SortFunc(r.entries, func(a, b mvEntry) int { return compareDots(a.dot, b.dot) })
	}
	r.cc.merge(&o.cc)
}

func findMVDot(es []mvEntry, d Dot) (int, bool) {
	return slices.BinarySearchFunc(es, d, func(e mvEntry, d Dot) int { return compareDots(e.dot, d) })
}

// MVRegister body: causal context, then the siblings sorted by dot.
func (r *MVRegister) appendBody(dst []byte) []byte {
	dst = r.cc.appendEncoding(dst)
	dst = appendUvarint(dst, uint64(len(r.entries)))
	for _, e := range r.entries {
		dst = appendBytes(appendDot(dst, e.dot), e.value)
	}
	return dst
}

func (r *reader) mvRegister() *MVRegister {
	s := &MVRegister{cc: r.causalContext()}
	n := r.count(8 + 1 + 1) // dot node, seq, value length
	if n > 0 {
		s.entries = make([]mvEntry, 0, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		e := mvEntry{dot: r.dot(), value: r.bytes()}
		if r.err != nil {
			break
		}
		if i > 0 && compareDots(s.entries[i-1].dot, e.dot) >= 0 {
			r.malformed("mvregister siblings not strictly increasing")
		}
		if !s.cc.contains(e.dot) {
			r.malformed("mvregister sibling outside causal context")
		}
		s.entries = append(s.entries, e)
	}
	return s
}
