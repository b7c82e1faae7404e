package crdt

import (
	"testing"

	"pgregory.net/rapid"
)

// propOwnBelow: Own(s, n) is below s (merging it in changes nothing), and
// merging it into any other replica's state never lets n's next operation
// reuse a dot or fall below a total n already reached.
func propOwnBelow(t *rapid.T, sp spec) {
	reps := history(t, sp)
	a := reps[0]
	own := Own(a.state, a.node)
	if own == nil {
		return
	}
	checkInvariants(t, own)
	assertEqual(t, "s⊔own(s) vs s", merged(t, a.state, own), a.state)
	stale := pick(t, reps[1:], "stale").Clone()
	mustMerge(t, stale, own)
	if mine := Own(stale, a.node); mine == nil || !Equal(merged(t, mine, own), mine) {
		t.Fatalf("the stale view lost part of what it learnt of node %v", a.node)
	}
	// n's next operation, made from the stale view that learnt its own
	// part, is not absorbed by what n had already done.
	b := &replica{node: a.node, clock: a.clock, phys: a.phys, state: stale}
	checkNotAbsorbed(t, a.state, sp.op(t, b), a.node)
}

// checkNotAbsorbed fails if delta, made by node, reuses a dot of before or
// lowers one of node's counter totals in it.
func checkNotAbsorbed(t *rapid.T, before, delta State, node NodeID) {
	switch d := delta.(type) {
	case *Counter:
		bc := before.(*Counter)
		for _, e := range d.entries {
			if i, ok := bc.find(e.node); ok && (e.p < bc.entries[i].p || e.n < bc.entries[i].n) {
				t.Fatalf("counter entry of %v went back: %+v after %+v", node, e, bc.entries[i])
			}
		}
	case *ORSet:
		bs := before.(*ORSet)
		for _, ds := range d.members {
			for _, dot := range ds {
				if bs.cc.contains(dot) {
					t.Fatalf("set dot %v reused", dot)
				}
			}
		}
	case *MVRegister:
		bm := before.(*MVRegister)
		for _, e := range d.entries {
			if bm.cc.contains(e.dot) {
				t.Fatalf("register dot %v reused", e.dot)
			}
		}
	}
}

func TestPropOwnCounter(t *testing.T)    { forEachSpec(t, "Counter", propOwnBelow) }
func TestPropOwnORSet(t *testing.T)      { forEachSpec(t, "ORSet", propOwnBelow) }
func TestPropOwnMVRegister(t *testing.T) { forEachSpec(t, "MVRegister", propOwnBelow) }

func TestOwnOfLWWAndAbsentNodeIsNil(t *testing.T) {
	if Own(&LWW{}, 1) != nil {
		t.Fatal("LWW has no per-node part")
	}
	c := &Counter{}
	c.Add(2, 5)
	if Own(c, 1) != nil {
		t.Fatal("node 1 added nothing")
	}
}
