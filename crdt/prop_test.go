package crdt

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"testing"

	"pgregory.net/rapid"
)

// minChecks is the number of cases every property runs unless -rapid.checks
// (or RAPID_CHECKS) says otherwise. rapid prints the seed of a failing case.
const minChecks = 1000

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := os.Getenv("RAPID_CHECKS") != ""
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "rapid.checks" })
	if !explicit {
		n := minChecks
		if testing.Short() {
			n *= 5 // rapid runs checks/5 under -short
		}
		if err := flag.Set("rapid.checks", strconv.Itoa(n)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}

// tb is what both *testing.T and *rapid.T provide.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// replica is one simulated node holding one key.
type replica struct {
	node  NodeID
	clock *Clock
	phys  int64
	state State
}

// spec describes how to drive one CRDT type in property tests.
type spec struct {
	kind Kind
	// op applies one random local operation to r.state and returns its delta.
	op func(t *rapid.T, r *replica) State
}

var (
	smallValues = []string{"", "a", "b", "cc", "\x00", "zz"}
	genValue    = rapid.Custom(func(t *rapid.T) []byte {
		if rapid.Bool().Draw(t, "fresh") {
			return rapid.SliceOfN(rapid.Byte(), 0, 6).Draw(t, "bytes")
		}
		return []byte(rapid.SampledFrom(smallValues).Draw(t, "value"))
	})
	genMember = rapid.Custom(func(t *rapid.T) []byte {
		return []byte(rapid.SampledFrom(smallValues).Draw(t, "member"))
	})
)

// tick advances a replica's physical clock, sometimes backwards.
func tick(t *rapid.T, r *replica) Timestamp {
	r.phys += rapid.Int64Range(-3, 10).Draw(t, "dt")
	return r.clock.Now(r.phys)
}

var specs = map[string]spec{
	"LWW": {KindLWW, func(t *rapid.T, r *replica) State {
		s := r.state.(*LWW)
		if rapid.IntRange(0, 3).Draw(t, "lwwop") == 0 {
			return s.Delete(tick(t, r))
		}
		return s.Set(genValue.Draw(t, "v"), tick(t, r))
	}},
	"MVRegister": {KindMVRegister, func(t *rapid.T, r *replica) State {
		return r.state.(*MVRegister).Write(r.node, genValue.Draw(t, "v"))
	}},
	"Counter": {KindCounter, func(t *rapid.T, r *replica) State {
		return r.state.(*Counter).Add(r.node, rapid.Int64Range(-5, 5).Draw(t, "n"))
	}},
	"ORSet": {KindSet, func(t *rapid.T, r *replica) State {
		s := r.state.(*ORSet)
		if rapid.Bool().Draw(t, "add") {
			return s.Add(r.node, genMember.Draw(t, "m"))
		}
		return s.Remove(genMember.Draw(t, "m"))
	}},
}

func newReplica(t *rapid.T, k Kind, i int) *replica {
	s, err := New(k)
	if err != nil {
		t.Fatal(err)
	}
	n := NodeIDFromBytes([]byte{byte(i)})
	return &replica{node: n, clock: NewClock(n, 0), phys: rapid.Int64Range(0, 20).Draw(t, "phys0"), state: s}
}

func mustMerge(t tb, dst, src State) {
	t.Helper()
	if err := Merge(dst, src); err != nil {
		t.Fatal(err)
	}
}

// history runs 2-4 replicas through random local ops, full-state merges and
// out-of-order delta deliveries, and returns the replicas.
func history(t *rapid.T, sp spec) []*replica {
	n := rapid.IntRange(2, 4).Draw(t, "replicas")
	reps := make([]*replica, n)
	for i := range reps {
		reps[i] = newReplica(t, sp.kind, i)
	}
	var deltas []State
	steps := rapid.IntRange(0, 40).Draw(t, "steps")
	for range steps {
		r := reps[rapid.IntRange(0, n-1).Draw(t, "at")]
		switch rapid.IntRange(0, 5).Draw(t, "action") {
		case 0: // anti-entropy with a peer
			src := reps[rapid.IntRange(0, n-1).Draw(t, "from")]
			mustMerge(t, r.state, src.state)
			if l, ok := src.state.(*LWW); ok {
				_ = r.clock.Observe(l.Timestamp(), r.phys)
			}
		case 1: // gossip: a delta arrives, possibly late or twice
			if len(deltas) > 0 {
				mustMerge(t, r.state, deltas[rapid.IntRange(0, len(deltas)-1).Draw(t, "delta")])
			}
		default:
			deltas = append(deltas, sp.op(t, r))
		}
	}
	for _, r := range reps {
		checkInvariants(t, r.state)
	}
	return reps
}

func pick(t *rapid.T, reps []*replica, label string) State {
	return reps[rapid.IntRange(0, len(reps)-1).Draw(t, label)].state
}

func merged(t tb, states ...State) State {
	out := states[0].Clone()
	for _, s := range states[1:] {
		mustMerge(t, out, s)
	}
	checkInvariants(t, out)
	return out
}

func assertEqual(t tb, what string, a, b State) {
	t.Helper()
	ea, eb := Encode(a), Encode(b)
	if !bytes.Equal(ea, eb) {
		t.Fatalf("%s: states differ\n a=%x\n b=%x", what, ea, eb)
	}
}

// checkInvariants verifies what the encoding cannot show.
func checkInvariants(t tb, s State) {
	t.Helper()
	enc := Encode(s)
	back, err := Decode(enc)
	if err != nil {
		t.Fatalf("own encoding rejected: %v\n%x", err, enc)
	}
	if !bytes.Equal(Encode(back), enc) {
		t.Fatalf("decode/encode not identical")
	}
	if o, ok := s.(*ORSet); ok {
		if o.index == nil {
			return // a delta; built on first merge into it
		}
		n := 0
		for m, ds := range o.members {
			if len(ds) == 0 {
				t.Fatalf("member %q without dots", m)
			}
			for _, d := range ds {
				if o.index[d] != m {
					t.Fatalf("index[%v]=%q, want %q", d, o.index[d], m)
				}
				n++
			}
		}
		if n != len(o.index) {
			t.Fatalf("index has %d dots, members %d", len(o.index), n)
		}
	}
}

func forEachSpec(t *testing.T, name string, prop func(t *rapid.T, sp spec)) {
	sp, ok := specs[name]
	if !ok {
		t.Fatalf("no spec %q", name)
	}
	rapid.Check(t, func(t *rapid.T) { prop(t, sp) })
}

func propCommutative(t *rapid.T, sp spec) {
	reps := history(t, sp)
	a, b := pick(t, reps, "a"), pick(t, reps, "b")
	assertEqual(t, "a⊔b vs b⊔a", merged(t, a, b), merged(t, b, a))
}

func propAssociative(t *rapid.T, sp spec) {
	reps := history(t, sp)
	a, b, c := pick(t, reps, "a"), pick(t, reps, "b"), pick(t, reps, "c")
	assertEqual(t, "(a⊔b)⊔c vs a⊔(b⊔c)", merged(t, merged(t, a, b), c), merged(t, a, merged(t, b, c)))
}

func propIdempotent(t *rapid.T, sp spec) {
	reps := history(t, sp)
	a, b := pick(t, reps, "a"), pick(t, reps, "b")
	assertEqual(t, "a⊔a vs a", merged(t, a, a), a)
	self := a.Clone()
	mustMerge(t, self, self)
	assertEqual(t, "a⊔=a vs a", self, a)
	ab := merged(t, a, b)
	assertEqual(t, "(a⊔b)⊔b vs a⊔b", merged(t, ab, b), ab)
	assertEqual(t, "(a⊔b)⊔a vs a⊔b", merged(t, ab, a), ab)
}

// propDeltaEquivalence: B has seen A's state; A then makes local ops while B
// makes its own and hears from others. B merged with A's deltas (in any
// order) equals B merged with A's full state, and every op's delta merged
// into the state before the op gives the state after it.
func propDeltaEquivalence(t *rapid.T, sp spec) {
	reps := history(t, sp)
	a, b := reps[0], reps[1]
	mustMerge(t, b.state, a.state)
	var deltas []State
	for range rapid.IntRange(0, 20).Draw(t, "ops") {
		switch rapid.IntRange(0, 3).Draw(t, "who") {
		case 0:
			sp.op(t, b)
		case 1:
			mustMerge(t, b.state, pick(t, reps[1:], "other"))
		default:
			before := a.state.Clone()
			d := sp.op(t, a)
			if d.Kind() != sp.kind {
				t.Fatalf("delta kind %v", d.Kind())
			}
			checkInvariants(t, d)
			assertEqual(t, "before⊔delta vs after", merged(t, before, d), a.state)
			deltas = append(deltas, d)
		}
	}
	deltas = rapid.Permutation(deltas).Draw(t, "order")
	viaDeltas := merged(t, append([]State{b.state}, deltas...)...)
	assertEqual(t, "B⊔deltas vs B⊔A", viaDeltas, merged(t, b.state, a.state))
}

// propCanonical: any merge order of the same states gives identical bytes
// and digests, and decoding them gives the same state back.
func propCanonical(t *rapid.T, sp spec) {
	reps := history(t, sp)
	states := make([]State, len(reps))
	for i, r := range reps {
		states[i] = r.state
	}
	x := merged(t, rapid.Permutation(states).Draw(t, "order1")...)
	y := merged(t, rapid.Permutation(states).Draw(t, "order2")...)
	// Also via pairwise trees: merge a clone of each into an empty state.
	z, _ := New(sp.kind)
	for _, s := range rapid.Permutation(states).Draw(t, "order3") {
		mustMerge(t, z, s.Clone())
	}
	assertEqual(t, "order1 vs order2", x, y)
	assertEqual(t, "order1 vs order3", x, z)
	if DigestOfState(x) != DigestOf(Encode(y)) {
		t.Fatalf("digests differ")
	}
	back, err := Decode(Encode(x))
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "decode(encode(x)) vs x", back, x)
	assertEqual(t, "clone", x.Clone(), x)
}

func TestPropLWWCommutative(t *testing.T)      { forEachSpec(t, "LWW", propCommutative) }
func TestPropLWWAssociative(t *testing.T)      { forEachSpec(t, "LWW", propAssociative) }
func TestPropLWWIdempotent(t *testing.T)       { forEachSpec(t, "LWW", propIdempotent) }
func TestPropLWWDeltaEquivalence(t *testing.T) { forEachSpec(t, "LWW", propDeltaEquivalence) }
func TestPropLWWCanonical(t *testing.T)        { forEachSpec(t, "LWW", propCanonical) }

func TestPropMVRegisterCommutative(t *testing.T) { forEachSpec(t, "MVRegister", propCommutative) }
func TestPropMVRegisterAssociative(t *testing.T) { forEachSpec(t, "MVRegister", propAssociative) }
func TestPropMVRegisterIdempotent(t *testing.T)  { forEachSpec(t, "MVRegister", propIdempotent) }
func TestPropMVRegisterDeltaEquivalence(t *testing.T) {
	forEachSpec(t, "MVRegister", propDeltaEquivalence)
}
func TestPropMVRegisterCanonical(t *testing.T) { forEachSpec(t, "MVRegister", propCanonical) }

func TestPropCounterCommutative(t *testing.T)      { forEachSpec(t, "Counter", propCommutative) }
func TestPropCounterAssociative(t *testing.T)      { forEachSpec(t, "Counter", propAssociative) }
func TestPropCounterIdempotent(t *testing.T)       { forEachSpec(t, "Counter", propIdempotent) }
func TestPropCounterDeltaEquivalence(t *testing.T) { forEachSpec(t, "Counter", propDeltaEquivalence) }
func TestPropCounterCanonical(t *testing.T)        { forEachSpec(t, "Counter", propCanonical) }

func TestPropORSetCommutative(t *testing.T)      { forEachSpec(t, "ORSet", propCommutative) }
func TestPropORSetAssociative(t *testing.T)      { forEachSpec(t, "ORSet", propAssociative) }
func TestPropORSetIdempotent(t *testing.T)       { forEachSpec(t, "ORSet", propIdempotent) }
func TestPropORSetDeltaEquivalence(t *testing.T) { forEachSpec(t, "ORSet", propDeltaEquivalence) }
func TestPropORSetCanonical(t *testing.T)        { forEachSpec(t, "ORSet", propCanonical) }
