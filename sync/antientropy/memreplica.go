package antientropy

import (
	"bytes"
	"maps"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/sync/merkle"
)

var (
	_ Replica  = (*MemReplica)(nil)
	_ Subsumer = (*MemReplica)(nil)
)

// MemReplica is an in-memory Replica for tests, simulations and benchmarks,
// shipped beside the interface like a mock transport. States are opaque;
// Merge is the lattice join used by Apply.
type MemReplica struct {
	Merge func(a, b []byte) []byte
	parts map[uint32]*memPart
}

type memPart struct {
	tree   *merkle.Tree
	states map[string][]byte
}

// NewMemReplica returns an empty replica that merges with merge.
func NewMemReplica(merge func(a, b []byte) []byte) *MemReplica {
	return &MemReplica{Merge: merge, parts: map[uint32]*memPart{}}
}

// MaxMerge is a simple lattice over opaque states: the lexicographic
// maximum. It is what the tests and meshbench merge with.
func MaxMerge(a, b []byte) []byte {
	if bytes.Compare(a, b) >= 0 {
		return a
	}
	return b
}

// Hold makes the replica hold partition p (empty if new).
func (m *MemReplica) Hold(p uint32) {
	if m.parts[p] == nil {
		m.parts[p] = &memPart{tree: merkle.New(), states: map[string][]byte{}}
	}
}

// Load replaces partition p with states and bulk-builds its tree.
func (m *MemReplica) Load(p uint32, states map[string][]byte) {
	t := merkle.Build(func(yield func([]byte, crdt.Digest) bool) {
		for k, v := range states {
			if !yield([]byte(k), crdt.DigestOf(v)) {
				return
			}
		}
	})
	m.parts[p] = &memPart{tree: t, states: states}
}

// LoadTree replaces partition p with states and a tree already built over
// them (the caller vouches that they agree).
func (m *MemReplica) LoadTree(p uint32, states map[string][]byte, t *merkle.Tree) {
	m.parts[p] = &memPart{tree: t, states: states}
}

// Set overwrites a key's state (no merge), holding p if needed.
func (m *MemReplica) Set(p uint32, key, state []byte) {
	m.Hold(p)
	part := m.parts[p]
	part.states[string(key)] = state
	part.tree.Put(key, crdt.DigestOf(state))
}

// Apply merges a received record into the store and the tree, as node does
// with Output.Store. Records for partitions not held are dropped.
func (m *MemReplica) Apply(r Record) {
	part := m.parts[r.Partition]
	if part == nil {
		return
	}
	st := r.State
	if old, ok := part.states[string(r.Key)]; ok {
		st = m.Merge(old, r.State)
	}
	st = bytes.Clone(st)
	part.states[string(r.Key)] = st
	part.tree.Put(r.Key, crdt.DigestOf(st))
}

// Subsumes implements Subsumer: merging b into a gives a.
func (m *MemReplica) Subsumes(_ uint32, _, a, b []byte) bool {
	return bytes.Equal(m.Merge(a, b), a)
}

// Tree implements Replica.
func (m *MemReplica) Tree(p uint32) *merkle.Tree {
	if part := m.parts[p]; part != nil {
		return part.tree
	}
	return nil
}

// State implements Replica.
func (m *MemReplica) State(p uint32, key []byte) ([]byte, bool) {
	part := m.parts[p]
	if part == nil {
		return nil, false
	}
	st, ok := part.states[string(key)]
	return st, ok
}

// States returns a copy of partition p's key states.
func (m *MemReplica) States(p uint32) map[string][]byte {
	if part := m.parts[p]; part != nil {
		return maps.Clone(part.states)
	}
	return nil
}
