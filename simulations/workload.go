package simulations

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// OpKind is the kind of one client operation.
type OpKind uint8

const (
	OpPut    OpKind = iota + 1 // LWW register write
	OpDelete                   // LWW register delete
	OpIncr                     // PN-counter add (Delta may be negative)
	OpSAdd                     // OR-set add
	OpSRem                     // OR-set remove
)

func (k OpKind) String() string {
	switch k {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpIncr:
		return "incr"
	case OpSAdd:
		return "sadd"
	case OpSRem:
		return "srem"
	}
	return fmt.Sprintf("op(%d)", uint8(k))
}

// Op is one scheduled client operation. Values and set members are unique
// across the whole run (they embed Seq), which is what lets the checker tell
// which write a final register value came from.
type Op struct {
	Seq   int           // index in the schedule
	At    time.Duration // offset from the start of the run
	Node  int           // index of the node the client talks to
	Kind  OpKind
	Key   string
	Value string // OpPut: the value; OpSAdd/OpSRem: the member
	Delta int64  // OpIncr
}

// Workload describes the client load. The zero value of a field means its
// default, written in the field's doc.
type Workload struct {
	// Rate is the mean number of operations per second over the whole mesh
	// (Poisson arrivals). Default 200.
	Rate float64
	// Keys is the number of distinct keys per CRDT kind. Default 64.
	Keys int
	// Zipf skews key choice: 0 is uniform, a value > 1 is the Zipf exponent s
	// (hot keys). Default 0.
	Zipf float64
	// Mix weighs the operation kinds, indexed by OpKind. Default
	// put 55, delete 5, incr 20, sadd 13, srem 7.
	Mix map[OpKind]int
}

func (w Workload) withDefaults() Workload {
	if w.Rate <= 0 {
		w.Rate = 200
	}
	if w.Keys <= 0 {
		w.Keys = 64
	}
	if len(w.Mix) == 0 {
		w.Mix = map[OpKind]int{OpPut: 55, OpDelete: 5, OpIncr: 20, OpSAdd: 13, OpSRem: 7}
	}
	return w
}

// sameNodeRemove is the share of set removes that target a member added
// through the same node. Those removes certainly observed the add, so the
// add-wins check can decide them; the rest exercise concurrent add/remove.
const sameNodeRemove = 0.7

// Generate draws the operations of a run of length d from rng. eligible
// returns the nodes a client may talk to at a given offset (up and joined);
// an op whose eligible set is empty is not generated. The result depends
// only on rng's state and the arguments, so a seed reproduces it.
func (w Workload) Generate(rng *rand.Rand, d time.Duration, eligible func(time.Duration) []int) []Op {
	w = w.withDefaults()
	kinds, total := mixTable(w.Mix)
	var zipf *rand.Zipf
	if w.Zipf > 1 {
		zipf = rand.NewZipf(rng, w.Zipf, 1, uint64(w.Keys-1))
	}
	pickKey := func(prefix string) string {
		var i uint64
		if zipf != nil {
			i = zipf.Uint64()
		} else {
			i = uint64(rng.IntN(w.Keys))
		}
		return fmt.Sprintf("%s/%04d", prefix, i)
	}
	type added struct {
		node   int
		member string
	}
	adds := map[string][]added{} // set key -> members added so far, in order
	var ops []Op
	t := time.Duration(0)
	for {
		gap := -math.Log(1-rng.Float64()) / w.Rate
		t += time.Duration(gap * float64(time.Second))
		if t >= d {
			return ops
		}
		nodes := eligible(t)
		if len(nodes) == 0 {
			continue
		}
		op := Op{Seq: len(ops), At: t, Node: nodes[rng.IntN(len(nodes))]}
		r := rng.IntN(total)
		for _, k := range kinds {
			if r < w.Mix[k] {
				op.Kind = k
				break
			}
			r -= w.Mix[k]
		}
		switch op.Kind {
		case OpPut:
			op.Key = pickKey("r")
			op.Value = fmt.Sprintf("v%d@n%d", op.Seq, op.Node)
		case OpDelete:
			op.Key = pickKey("r")
		case OpIncr:
			op.Key = pickKey("c")
			op.Delta = int64(rng.IntN(10)) - 2
			if op.Delta == 0 {
				op.Delta = 1
			}
		case OpSAdd:
			op.Key = pickKey("s")
			op.Value = fmt.Sprintf("m%d", op.Seq)
			adds[op.Key] = append(adds[op.Key], added{op.Node, op.Value})
		case OpSRem:
			op.Key = pickKey("s")
			cands := adds[op.Key]
			if len(cands) == 0 {
				// Nothing to remove yet: make it an add instead, so the
				// schedule's shape does not depend on luck.
				op.Kind = OpSAdd
				op.Value = fmt.Sprintf("m%d", op.Seq)
				adds[op.Key] = append(adds[op.Key], added{op.Node, op.Value})
				break
			}
			var own []added
			for _, a := range cands {
				if a.node == op.Node {
					own = append(own, a)
				}
			}
			if len(own) > 0 && rng.Float64() < sameNodeRemove {
				cands = own
			}
			op.Value = cands[rng.IntN(len(cands))].member
		}
		ops = append(ops, op)
	}
}

// mixTable returns the op kinds in a fixed order (map order would make the
// draw depend on Go's map iteration) and the sum of their weights.
func mixTable(mix map[OpKind]int) ([]OpKind, int) {
	var kinds []OpKind
	total := 0
	for k := OpPut; k <= OpSRem; k++ {
		if mix[k] > 0 {
			kinds = append(kinds, k)
			total += mix[k]
		}
	}
	return kinds, total
}
