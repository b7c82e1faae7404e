package simulations

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// EventKind is the kind of one fault-schedule event.
type EventKind uint8

const (
	EvPartition EventKind = iota + 1 // split the links into Groups
	EvHeal                           // restore every link cut by a partition
	EvCrash                          // stop Node; its store is kept
	EvRestart                        // start Node again on its kept store
	EvJoin                           // start Node for the first time
	EvDrain                          // clients stop sending to Node; it keeps running
)

func (k EventKind) String() string {
	switch k {
	case EvPartition:
		return "partition"
	case EvHeal:
		return "heal"
	case EvCrash:
		return "crash"
	case EvRestart:
		return "restart"
	case EvJoin:
		return "join"
	case EvDrain:
		return "drain"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is one scheduled fault or membership change.
type Event struct {
	At     time.Duration
	Kind   EventKind
	Node   int     // EvCrash, EvRestart, EvJoin
	Groups [][]int // EvPartition: node indexes per side
}

func (e Event) String() string {
	switch e.Kind {
	case EvPartition:
		sizes := make([]int, len(e.Groups))
		for i, g := range e.Groups {
			sizes[i] = len(g)
		}
		return fmt.Sprintf("%v partition %v", e.At.Round(time.Millisecond), sizes)
	case EvHeal:
		return fmt.Sprintf("%v heal", e.At.Round(time.Millisecond))
	}
	return fmt.Sprintf("%v %s node %d", e.At.Round(time.Millisecond), e.Kind, e.Node)
}

// Plan is what a scenario decides before the run starts: who is up at the
// start, the fault schedule, and the network and clock conditions. It is
// drawn from the seed alone.
type Plan struct {
	Scenario string
	Initial  []int           // nodes started at time 0
	Events   []Event         // sorted by At
	Skew     []time.Duration // per node, added to its physical clock
	Loss     float64         // probability of losing a gossip message per hop, and of an anti-entropy session being reset
	Latency  time.Duration   // per link, one way
	// Bandwidth per link in bytes per second; 0 means unlimited.
	Bandwidth float64
	// Replication is the nodes' replication factor R; 0 means every node
	// holds every partition.
	Replication int
	// TombstoneGrace is the nodes' node.Config.TombstoneGrace; 0 keeps
	// the node's default.
	TombstoneGrace time.Duration
	// Mix, when set, is the operation mix the scenario needs, used unless
	// the workload names its own.
	Mix map[OpKind]int
}

// Scenarios lists the scenario names meshsim accepts, in a stable order.
func Scenarios() []string {
	return []string{"steady", "partition-heal", "churn", "late-joiner", "clock-skew", "lossy", "sharded", "deletes"}
}

// MakePlan draws the plan of scenario name for n nodes and a workload of
// length d. It fails with ErrUnknownScenario.
func MakePlan(name string, n int, d time.Duration, rng *rand.Rand) (Plan, error) {
	p := Plan{Scenario: name, Skew: make([]time.Duration, n), Latency: 2 * time.Millisecond}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	p.Initial = all
	at := func(frac float64) time.Duration { return time.Duration(frac * float64(d)) }
	switch name {
	case "steady":
	case "partition-heal":
		// Two sides of random membership. Writes go on through both sides
		// for most of the run; the heal is the last thing that happens, so
		// the convergence time is the repair time of the partition.
		perm := rng.Perm(n)
		half := n / 2
		p.Events = []Event{
			{At: at(0.15), Kind: EvPartition, Groups: [][]int{sorted(perm[:half]), sorted(perm[half:])}},
			{At: d, Kind: EvHeal},
		}
	case "churn":
		// A fifth of the nodes (at least one) crash at random times and come
		// back on their kept store 10-30 % of the run later; every restart
		// is done by 90 % of the run.
		k := max(1, n/5)
		for _, i := range rng.Perm(n)[:k] {
			down := at(0.1 + 0.5*rng.Float64())
			up := down + at(0.1+0.2*rng.Float64())
			p.Events = append(p.Events, Event{At: down, Kind: EvCrash, Node: i}, Event{At: up, Kind: EvRestart, Node: i})
		}
	case "late-joiner":
		// A fifth of the nodes (at least one) start only after 60-90 % of
		// the writes are done, and must catch up by anti-entropy.
		k := max(1, n/5)
		late := rng.Perm(n)[:k]
		p.Initial = nil
		for i := range n {
			if !slices.Contains(late, i) {
				p.Initial = append(p.Initial, i)
			}
		}
		for _, i := range late {
			p.Events = append(p.Events, Event{At: at(0.6 + 0.3*rng.Float64()), Kind: EvJoin, Node: i})
		}
	case "clock-skew":
		// Physical clocks spread over +-20 s, inside the default 1 min drift
		// limit, so timestamps are accepted but last-writer-wins follows
		// the HLC, not real time.
		for i := range p.Skew {
			p.Skew[i] = time.Duration((rng.Float64()*2 - 1) * float64(20*time.Second))
		}
	case "lossy":
		p.Loss = 0.10
		p.Latency = 10 * time.Millisecond
	case "sharded":
		// Each partition on 3 nodes. Membership changes under load, so
		// partitions migrate while writes (many through non-holders, as
		// hints) go on: a tenth of the nodes (at least one) join late, and
		// as many crash and come back on their kept store.
		p.Replication = 3
		k := max(1, n/10)
		perm := rng.Perm(n)
		late, churn := perm[:k], perm[k:min(n, 2*k)]
		p.Initial = nil
		for i := range n {
			if !slices.Contains(late, i) {
				p.Initial = append(p.Initial, i)
			}
		}
		for _, i := range late {
			p.Events = append(p.Events, Event{At: at(0.3 + 0.3*rng.Float64()), Kind: EvJoin, Node: i})
		}
		for _, i := range churn {
			down := at(0.2 + 0.3*rng.Float64())
			p.Events = append(p.Events, Event{At: down, Kind: EvCrash, Node: i}, Event{At: down + at(0.2), Kind: EvRestart, Node: i})
		}
	case "deletes":
		p.deletes(n, d, rng)
	default:
		return Plan{}, fmt.Errorf("%w: %q (have %v)", ErrUnknownScenario, name, Scenarios())
	}
	slices.SortStableFunc(p.Events, func(a, b Event) int { return int(a.At - b.At) })
	return p, nil
}

// Eligible returns a function telling which nodes are up at offset t, as the
// plan schedules it; the workload sends ops only to those.
func (p Plan) Eligible(n int) func(time.Duration) []int {
	return func(t time.Duration) []int {
		up := make([]bool, n)
		for _, i := range p.Initial {
			up[i] = true
		}
		for _, e := range p.Events {
			if e.At > t {
				break
			}
			switch e.Kind {
			case EvCrash, EvDrain:
				up[e.Node] = false
			case EvRestart, EvJoin:
				up[e.Node] = true
			}
		}
		var out []int
		for i, u := range up {
			if u {
				out = append(out, i)
			}
		}
		return out
	}
}

// LastFault is the offset of the last scheduled event (0 when none).
func (p Plan) LastFault() time.Duration {
	if len(p.Events) == 0 {
		return 0
	}
	return p.Events[len(p.Events)-1].At
}

func sorted(s []int) []int {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// deletes plans a run heavy in register deletes and re-writes, with a
// tombstone grace of a fifth of the run, so tombstones are collected while
// the writes go on. A tenth of the nodes (at least one) crash and return
// within the grace; one node leaves for two and a half graces and returns
// on its kept store after the others collected deletes it never saw. Its
// clients stop a quarter of the run before it leaves, so what it
// acknowledged has reached the others by then (a write older than the
// grace that only the returning node holds is dropped by design, and the
// checker would count it lost). The grace must exceed the time a delete
// takes to reach every node: a short run in real time on a loaded machine
// can break that, and then a key does come back (meshsim --duration 15s
// gives a 3 s grace).
func (p *Plan) deletes(n int, d time.Duration, rng *rand.Rand) {
	at := func(frac float64) time.Duration { return time.Duration(frac * float64(d)) }
	p.TombstoneGrace = at(0.2)
	p.Mix = map[OpKind]int{OpPut: 45, OpDelete: 35, OpIncr: 5, OpSAdd: 10, OpSRem: 5}
	perm := rng.Perm(n)
	away := perm[0]
	p.Events = append(p.Events,
		Event{At: at(0.05), Kind: EvDrain, Node: away},
		Event{At: at(0.3), Kind: EvCrash, Node: away},
		Event{At: at(0.3) + 5*p.TombstoneGrace/2, Kind: EvRestart, Node: away})
	for _, i := range perm[1:max(2, n/10+1)] {
		if n < 2 {
			break
		}
		down := at(0.1 + 0.6*rng.Float64())
		p.Events = append(p.Events, Event{At: down, Kind: EvCrash, Node: i}, Event{At: down + at(0.1), Kind: EvRestart, Node: i})
	}
}
