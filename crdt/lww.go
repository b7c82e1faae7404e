package crdt

import (
	"bytes"
	"fmt"
)

// LWW is a last-writer-wins register. The write with the greatest Timestamp
// wins; a delete is a write of a tombstone, collected by Collect after the
// grace period. The zero value is an empty register, ready to use.
type LWW struct {
	gen     Timestamp // kind generation
	ts      Timestamp // zero: never written
	value   []byte
	deleted bool
}

// Kind returns KindLWW.
func (r *LWW) Kind() Kind { return KindLWW }

// Generation returns the register's kind generation.
func (r *LWW) Generation() Timestamp { return r.gen }

// Clone returns a copy of r (sharing the immutable value bytes).
func (r *LWW) Clone() State { c := *r; return &c }

// Set writes value at ts and returns the delta to gossip. A write that loses
// to the current state leaves r unchanged; its delta still loses everywhere
// else, so sending it is harmless. A zero ts is ignored (empty delta). The
// value is copied.
func (r *LWW) Set(value []byte, ts Timestamp) *LWW {
	if ts.IsZero() {
		return &LWW{gen: r.gen}
	}
	d := &LWW{gen: r.gen, ts: ts, value: bytes.Clone(value)}
	if d.value == nil {
		d.value = []byte{} // Value reports ok with a non-nil empty slice
	}
	r.Merge(d)
	return d
}

// Delete writes a tombstone at ts and returns the delta.
func (r *LWW) Delete(ts Timestamp) *LWW {
	if ts.IsZero() {
		return &LWW{gen: r.gen}
	}
	d := &LWW{gen: r.gen, ts: ts, deleted: true}
	r.Merge(d)
	return d
}

// Value returns the current value; ok is false if r is empty or deleted.
// The returned slice must not be modified.
func (r *LWW) Value() (value []byte, ok bool) {
	if r.ts.IsZero() || r.deleted {
		return nil, false
	}
	return r.value, true
}

// Deleted reports whether the winning write is a tombstone.
func (r *LWW) Deleted() bool { return r.deleted }

// Timestamp returns the timestamp of the winning write (zero if empty).
func (r *LWW) Timestamp() Timestamp { return r.ts }

// Merge merges o into r. It never allocates. A register of a later
// generation wins whole. Equal timestamps only arise from a misbehaving
// writer; they are still resolved deterministically (tombstone wins, then
// the greater value) so merge stays commutative.
func (r *LWW) Merge(o *LWW) {
	switch c := o.gen.Compare(r.gen); {
	case c > 0:
		*r = *o
		return
	case c < 0 || o.ts.IsZero():
		return
	}
	if r.ts.IsZero() || lwwLess(r, o) {
		*r = *o
	}
}

func lwwLess(a, b *LWW) bool {
	if c := a.ts.Compare(b.ts); c != 0 {
		return c < 0
	}
	if a.deleted != b.deleted {
		return b.deleted
	}
	return bytes.Compare(a.value, b.value) < 0
}

// LWW body: one tag byte (0 empty, 1 value, 2 tombstone), then for 1 and 2
// the timestamp, then for 1 the value.
const (
	lwwEmpty     = 0
	lwwValue     = 1
	lwwTombstone = 2
)

func (r *LWW) appendBody(dst []byte) []byte {
	switch {
	case r.ts.IsZero():
		return append(dst, lwwEmpty)
	case r.deleted:
		return appendTimestamp(append(dst, lwwTombstone), r.ts)
	}
	return appendBytes(appendTimestamp(append(dst, lwwValue), r.ts), r.value)
}

func (r *reader) lww() *LWW {
	s := &LWW{}
	switch tag := r.byte(); {
	case r.err != nil:
	case tag == lwwEmpty:
	case tag == lwwValue || tag == lwwTombstone:
		s.ts = r.timestamp()
		if r.err == nil && s.ts.IsZero() {
			r.malformed("lww write with zero timestamp")
		}
		if tag == lwwValue {
			s.value = r.bytes()
		} else {
			s.deleted = true
		}
	default:
		r.malformed(fmt.Sprintf("lww tag %d", tag))
	}
	return s
}
