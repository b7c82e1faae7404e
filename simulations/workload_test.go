package simulations

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1)) }

func TestWorkloadIsReproducible(t *testing.T) {
	t.Logf("seeds 7 and 8")
	all := func(time.Duration) []int { return []int{0, 1, 2, 3} }
	w := Workload{Rate: 500, Keys: 16, Zipf: 1.2}
	a := w.Generate(seeded(7), 2*time.Second, all)
	b := w.Generate(seeded(7), 2*time.Second, all)
	c := w.Generate(seeded(8), 2*time.Second, all)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different workloads")
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds, same workload")
	}
	if len(a) < 800 || len(a) > 1200 {
		t.Fatalf("%d ops at 500/s over 2 s", len(a))
	}
	seen := map[string]bool{}
	for i, op := range a {
		if op.Seq != i || (i > 0 && op.At < a[i-1].At) {
			t.Fatalf("op %d out of order: %+v", i, op)
		}
		if op.Kind == OpPut || op.Kind == OpSAdd {
			if seen[op.Value] {
				t.Fatalf("value %q written twice: the checker needs unique values", op.Value)
			}
			seen[op.Value] = true
		}
	}
}

func TestPlansAreReproducible(t *testing.T) {
	for _, name := range Scenarios() {
		p1, err1 := MakePlan(name, 20, 3*time.Second, seeded(3))
		p2, err2 := MakePlan(name, 20, 3*time.Second, seeded(3))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v %v", name, err1, err2)
		}
		if !reflect.DeepEqual(p1, p2) {
			t.Fatalf("%s: same seed, different plans", name)
		}
		for _, e := range p1.Events {
			if e.At > 3*time.Second {
				t.Fatalf("%s: event %v after the workload", name, e)
			}
		}
	}
	if _, err := MakePlan("nope", 3, time.Second, seeded(1)); err == nil {
		t.Fatal("unknown scenario accepted")
	}
}

func TestEligibleFollowsCrashes(t *testing.T) {
	p := Plan{Initial: []int{0, 1, 2}, Events: []Event{
		{At: time.Second, Kind: EvCrash, Node: 1},
		{At: 2 * time.Second, Kind: EvRestart, Node: 1},
	}}
	el := p.Eligible(3)
	if got := el(1500 * time.Millisecond); !reflect.DeepEqual(got, []int{0, 2}) {
		t.Fatalf("during crash: %v", got)
	}
	if got := el(2500 * time.Millisecond); len(got) != 3 {
		t.Fatalf("after restart: %v", got)
	}
}
