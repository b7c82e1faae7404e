package crdt

import (
	"bytes"
	"testing"

	"pgregory.net/rapid"
)

// Property tests of the join across kinds and generations (see the package
// doc). rapid prints the seed of a failing case; replay it with
// -rapid.seed=N (or the .fail file it writes under testdata/rapid).

var kindSpecs = []string{"LWW", "MVRegister", "Counter", "ORSet"}

// genGeneration draws a generation from a small pool, so that equal
// generations (which merge) are common, as are ties on Wall broken by node.
var genGeneration = rapid.Custom(func(t *rapid.T) Timestamp {
	switch rapid.IntRange(0, 3).Draw(t, "gen") {
	case 0:
		return Timestamp{}
	case 1:
		return Timestamp{Wall: 5, Node: 1}
	case 2:
		return Timestamp{Wall: 5, Node: 2}
	}
	return Timestamp{Wall: 9, Logical: 1, Node: 1}
})

// genMixed draws a state of any kind and generation, built by two writers
// through local ops and merges, as a replica would hold it.
var genMixed = rapid.Custom(func(t *rapid.T) State {
	sp := specs[rapid.SampledFrom(kindSpecs).Draw(t, "kind")]
	gen := genGeneration.Draw(t, "generation")
	var reps [2]*replica
	for i := range reps {
		reps[i] = newReplica(t, sp.kind, i)
		reps[i].state = atGen(sp.kind, gen)
	}
	for range rapid.IntRange(0, 6).Draw(t, "ops") {
		r := reps[rapid.IntRange(0, 1).Draw(t, "at")]
		if rapid.IntRange(0, 3).Draw(t, "merge") == 0 {
			mustMerge(t, r.state, reps[0].state)
			mustMerge(t, r.state, reps[1].state)
			continue
		}
		sp.op(t, r)
	}
	return reps[rapid.IntRange(0, 1).Draw(t, "pick")].state
})

// joined joins states left to right into a copy of the first.
func joined(t tb, states ...State) State {
	t.Helper()
	out := states[0].Clone()
	for _, s := range states[1:] {
		before := Encode(s)
		out = Join(out, s)
		if !bytes.Equal(Encode(s), before) {
			t.Fatalf("Join modified its source")
		}
	}
	checkInvariants(t, out)
	return out
}

func TestPropJoinCommutative(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := genMixed.Draw(t, "a"), genMixed.Draw(t, "b")
		assertEqual(t, "a⊔b vs b⊔a", joined(t, a, b), joined(t, b, a))
	})
}

func TestPropJoinAssociative(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := genMixed.Draw(t, "a"), genMixed.Draw(t, "b"), genMixed.Draw(t, "c")
		assertEqual(t, "(a⊔b)⊔c vs a⊔(b⊔c)", joined(t, joined(t, a, b), c), joined(t, a, joined(t, b, c)))
	})
}

func TestPropJoinIdempotent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := genMixed.Draw(t, "a"), genMixed.Draw(t, "b")
		assertEqual(t, "a⊔a vs a", joined(t, a, a), a)
		self := a.Clone()
		assertEqual(t, "a⊔=a vs a", Join(self, self), a)
		ab := joined(t, a, b)
		assertEqual(t, "(a⊔b)⊔b vs a⊔b", joined(t, ab, b), ab)
		assertEqual(t, "(a⊔b)⊔a vs a⊔b", joined(t, ab, a), ab)
		// The empty register at generation zero is the least state, and
		// an absent key (nil) is below everything.
		assertEqual(t, "∅⊔a vs a", joined(t, &LWW{}, a), a)
		assertEqual(t, "nil⊔a vs a", Join(nil, a), a)
		assertEqual(t, "a⊔nil vs a", Join(a.Clone(), nil), a)
		// The winner across ranks is the one that ranks higher, whole.
		if c := CompareRank(a, b); c != 0 {
			want := a
			if c < 0 {
				want = b
			}
			assertEqual(t, "a⊔b vs the higher rank", ab, want)
		}
	})
}

// Merge of one kind, generations apart, agrees with Join: each type's own
// Merge keeps the later generation whole too.
func TestPropMergeAgreesWithJoin(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := genMixed.Draw(t, "a"), genMixed.Draw(t, "b")
		if a.Kind() != b.Kind() {
			return
		}
		assertEqual(t, "Merge(a, b) vs Join(a, b)", merged(t, a, b), joined(t, a, b))
	})
}

// Any delivery order of any multiset of states, duplicates included,
// gives every replica the same bytes and digest.
func TestPropJoinConverges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		states := rapid.SliceOfN(genMixed, 1, 6).Draw(t, "states")
		var want []byte
		for i := range rapid.IntRange(2, 4).Draw(t, "replicas") {
			order := rapid.Permutation(states).Draw(t, "order")
			for range rapid.IntRange(0, 3).Draw(t, "duplicates") {
				at := rapid.IntRange(0, len(order)).Draw(t, "at")
				dup := states[rapid.IntRange(0, len(states)-1).Draw(t, "dup")]
				order = append(order[:at], append([]State{dup}, order[at:]...)...)
			}
			var got State
			for _, s := range order {
				got = Join(got, s)
			}
			enc := Encode(got)
			if i == 0 {
				want = enc
			} else if !bytes.Equal(enc, want) || DigestOfState(got) != DigestOf(want) {
				t.Fatalf("replica %d converged to %x, replica 0 to %x", i, enc, want)
			}
		}
	})
}

// kindReplica is a node's view of one key whose kind changes, by the
// node's rule: a register write over another kind starts a new generation
// stamped by the clock; an op of another kind starts on an absent key at
// generation zero and on a register tombstone at the tombstone's
// generation; any other op of the wrong kind is refused.
type kindReplica struct {
	replica       // the clock, and the state an op acts on
	view    State // the key as this replica holds it; nil: absent
}

func (r *kindReplica) op(t *rapid.T) (delta State, changed bool) {
	sp := specs[rapid.SampledFrom(kindSpecs).Draw(t, "op kind")]
	base := r.view
	switch {
	case base == nil:
		base = atGen(sp.kind, Timestamp{})
	case base.Kind() == sp.kind:
		base = base.Clone()
	case sp.kind == KindLWW:
		_ = r.clock.Observe(base.Generation(), r.phys)
		base = atGen(KindLWW, tick(t, &r.replica))
		changed = true
	case base.Kind() == KindLWW && isVacant(base.(*LWW)):
		base = atGen(sp.kind, base.Generation())
		changed = true
	default:
		return nil, false // ErrWrongKind
	}
	r.replica.state = base
	delta = sp.op(t, &r.replica)
	if changed && CompareRank(base, r.view) <= 0 {
		t.Fatalf("kind change to %v at %v does not outrank %v at %v", base.Kind(), base.Generation(), r.view.Kind(), r.view.Generation())
	}
	r.view = base
	return delta, changed
}

func isVacant(r *LWW) bool { _, ok := r.Value(); return !ok }

// Replicas that change a key's kind concurrently, exchange deltas late,
// twice or never and full states at random, converge once each has heard
// every other; each op's delta joined into the state before it gives the
// state after it, kind changes included.
func TestPropKindChangesConverge(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 4).Draw(t, "replicas")
		reps := make([]*kindReplica, n)
		for i := range reps {
			reps[i] = &kindReplica{replica: *newReplica(t, KindLWW, i)}
		}
		var deltas []State
		for range rapid.IntRange(0, 40).Draw(t, "steps") {
			r := reps[rapid.IntRange(0, n-1).Draw(t, "at")]
			switch rapid.IntRange(0, 4).Draw(t, "action") {
			case 0:
				src := reps[rapid.IntRange(0, n-1).Draw(t, "from")]
				r.view = Join(r.view, src.view)
			case 1:
				if len(deltas) > 0 {
					r.view = Join(r.view, deltas[rapid.IntRange(0, len(deltas)-1).Draw(t, "delta")])
				}
			default:
				var before State
				if r.view != nil {
					before = r.view.Clone()
				}
				d, _ := r.op(t)
				if d == nil {
					continue
				}
				checkInvariants(t, d)
				assertEqual(t, "before⊔delta vs after", Join(before, d), r.view)
				deltas = append(deltas, d)
			}
		}
		var all State
		for _, r := range rapid.Permutation(reps).Draw(t, "final order") {
			all = Join(all, r.view)
		}
		for i, r := range reps {
			for _, o := range reps {
				r.view = Join(r.view, o.view)
			}
			if all == nil {
				if r.view != nil {
					t.Fatalf("replica %d holds a state nobody wrote", i)
				}
				continue
			}
			assertEqual(t, "replica vs join of all", r.view, all)
		}
	})
}

func TestJoinKindChange(t *testing.T) {
	// A counter gossiped onto a register key wins at equal generation...
	reg := &LWW{}
	reg.Set([]byte("v"), Timestamp{Wall: 10, Node: 1})
	hostile := &Counter{}
	hostile.Add(9, 1)
	got := Join(reg.Clone(), hostile)
	if got.Kind() != KindCounter {
		t.Fatalf("counter at generation zero lost to a register: %v", got.Kind())
	}
	// ...and a register written over it at a new generation wins back.
	put := atGen(KindLWW, Timestamp{Wall: 11, Node: 1}).(*LWW)
	put.Set([]byte("w"), Timestamp{Wall: 11, Node: 1})
	for _, s := range []State{Join(got, put), Join(put.Clone(), hostile)} {
		if v, ok := s.(*LWW).Value(); !ok || string(v) != "w" {
			t.Fatalf("register of a later generation: %v %q", s.Kind(), v)
		}
	}
	// Two counters created concurrently on an absent key merge.
	a, b := &Counter{}, &Counter{}
	a.Add(1, 2)
	b.Add(2, 3)
	if c := Join(a.Clone(), b).(*Counter); c.Value() != 5 {
		t.Fatalf("concurrent creations lost increments: %d", c.Value())
	}
	if _, err := NewAt(KindLWW, Timestamp{Wall: -1}); err == nil {
		t.Fatal("NewAt accepted a generation before the epoch")
	}
}
