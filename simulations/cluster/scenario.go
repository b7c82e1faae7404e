package cluster

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gossipmesh/gossipmesh/simulations"
)

// FaultKind is the kind of one step of a fault schedule.
type FaultKind uint8

const (
	FPartition FaultKind = iota + 1 // cut the links in Cut: their packets are dropped silently
	FHeal                           // let every cut link carry packets again
	FKill                           // docker kill (SIGKILL): no shutdown at all
	FStart                          // docker start after a kill, on the kept store
	FPause                          // docker pause: the process is frozen, its sockets stay open
	FUnpause                        // docker unpause
	FRestart                        // docker restart: SIGTERM, clean stop, start
	FSlow                           // slow the links in Links: delay, jitter and loss (Config.SlowDelay, SlowJitter, SlowLoss)
	FUnslow                         // make every slow link fast again
)

func (k FaultKind) String() string {
	switch k {
	case FPartition:
		return "partition"
	case FHeal:
		return "heal"
	case FKill:
		return "kill"
	case FStart:
		return "start"
	case FPause:
		return "pause"
	case FUnpause:
		return "unpause"
	case FRestart:
		return "restart"
	case FSlow:
		return "slow"
	case FUnslow:
		return "unslow"
	}
	return fmt.Sprintf("fault(%d)", uint8(k))
}

// Fault is one step of the schedule: a fault, or the end of one.
type Fault struct {
	At    time.Duration `json:"-"`
	Kind  FaultKind     `json:"-"`
	Name  string        `json:"kind"`
	Node  int           `json:"node,omitempty"`
	Shape string        `json:"shape,omitempty"` // FPartition: halves, bridge or isolate
	Cut   [][2]int      `json:"cut,omitempty"`   // FPartition: links (node pairs) to cut
	Links [][2]int      `json:"links,omitempty"` // FSlow: links to slow
	For   time.Duration `json:"-"`               // FPause: how long, for the schedule's log
}

func (f Fault) String() string {
	at := f.At.Round(time.Millisecond)
	switch f.Kind {
	case FPartition:
		return fmt.Sprintf("%v partition (%s, %d links cut)", at, f.Shape, len(f.Cut))
	case FHeal:
		return fmt.Sprintf("%v heal", at)
	case FSlow:
		return fmt.Sprintf("%v slow (%s, %d links)", at, f.Shape, len(f.Links))
	case FUnslow:
		return fmt.Sprintf("%v unslow", at)
	case FPause:
		if f.For > 0 {
			return fmt.Sprintf("%v pause node %d for %v", at, f.Node, f.For.Round(time.Millisecond))
		}
	}
	return fmt.Sprintf("%v %s node %d", at, f.Kind, f.Node)
}

// primary reports whether f starts a fault (rather than ending one); the
// fault count of a run counts these.
func (f Fault) primary() bool {
	return f.Kind == FPartition || f.Kind == FKill || f.Kind == FPause || f.Kind == FRestart || f.Kind == FSlow
}

// Scenarios lists the scenarios of the docker backend, in a stable order.
func Scenarios() []string {
	return []string{"steady", "partition-heal", "churn", "pause", "random-faults"}
}

// restartDown is how long a node is taken to be unavailable after a
// restart or a start begins: the workload sends it nothing meanwhile.
const restartDown = 3 * time.Second

// plan is a run's fault schedule and the nodes' availability, drawn from
// the seed alone.
type plan struct {
	faults []Fault // sorted by At
	n      int
}

// cutBetween returns the links between groups a and b.
func cutBetween(a, b []int) [][2]int {
	var out [][2]int
	for _, i := range a {
		for _, j := range b {
			out = append(out, pair(i, j))
		}
	}
	return out
}

// makePlan draws the schedule of scenario name. partition-heal and churn
// are the in-process harness's (simulations.MakePlan) from the same seed;
// pause and random-faults exist only here, since freezing a process and
// killing it without shutdown are what real containers add.
func makePlan(cfg *Config, rng *rand.Rand) (plan, error) {
	n, d := cfg.Nodes, cfg.Duration
	p := plan{n: n}
	switch cfg.Scenario {
	case "steady", "partition-heal", "churn":
		sp, err := simulations.MakePlan(cfg.Scenario, n, d, rng)
		if err != nil {
			return plan{}, fmt.Errorf("%w: %v", ErrUnknownScenario, err)
		}
		for _, e := range sp.Events {
			switch e.Kind {
			case simulations.EvPartition:
				p.add(Fault{At: e.At, Kind: FPartition, Shape: "halves", Cut: cutBetween(e.Groups[0], e.Groups[1])})
			case simulations.EvHeal:
				p.add(Fault{At: e.At, Kind: FHeal})
			case simulations.EvCrash:
				p.add(Fault{At: e.At, Kind: FKill, Node: e.Node})
			case simulations.EvRestart:
				p.add(Fault{At: e.At, Kind: FStart, Node: e.Node})
			}
		}
	case "pause":
		// A fifth of the nodes (at least one) are frozen for PauseFor each,
		// starting at random in the first half of the run.
		k := max(1, n/5)
		for _, i := range rng.Perm(n)[:k] {
			at := time.Duration((0.1 + 0.4*rng.Float64()) * float64(d))
			end := min(at+cfg.PauseFor, d)
			p.add(Fault{At: at, Kind: FPause, Node: i}, Fault{At: end, Kind: FUnpause, Node: i})
		}
	case "random-faults":
		p.random(cfg, rng)
	default:
		return plan{}, fmt.Errorf("%w: %q (have %v)", ErrUnknownScenario, cfg.Scenario, Scenarios())
	}
	slices.SortStableFunc(p.faults, func(a, b Fault) int { return int(a.At - b.At) })
	return p, nil
}

func (p *plan) add(fs ...Fault) {
	for _, f := range fs {
		f.Name = f.Kind.String()
		p.faults = append(p.faults, f)
	}
}

// interval is a span [from, to) a node or the network is taken by a fault.
type interval struct{ from, to time.Duration }

func (a interval) overlaps(b interval) bool { return a.from < b.to && b.from < a.to }

// Pauses of the random schedule last from pauseMin to pauseMax (at most
// Config.PauseFor): most outlast meshd's dead-after time (8 heartbeats of
// 1 s), so the others declare the frozen node dead and, under placement,
// move its partitions, while it still holds its sockets and its state.
const (
	pauseMin = 5 * time.Second
	pauseMax = 20 * time.Second
)

// random draws cfg.Faults faults at random times: partitions (halves, a
// bridge node between two sides, or one node isolated) lasting 4-15 s, one
// at a time; slow links (one node's, or some at random) for 3-30 s, one
// set at a time; kills with the node down 2-10 s; pauses of 5-20 s; and
// restarts. A node has at most one fault at a time, at least two nodes are
// running at any moment, and everything has ended by the end of the run.
func (p *plan) random(cfg *Config, rng *rand.Rand) {
	n, d := cfg.Nodes, cfg.Duration
	busy := make([][]interval, n) // per node
	var parts, slows []interval
	free := func(iv interval, list []interval) bool {
		for _, b := range list {
			if b.overlaps(iv) {
				return false
			}
		}
		return true
	}
	// downOver counts the nodes killed, paused or restarting over iv.
	downOver := func(iv interval) int {
		c := 0
		for _, l := range busy {
			if !free(iv, l) {
				c++
			}
		}
		return c
	}
	span := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Float64()*float64(hi-lo)) }
	// Each attempt draws a kind and a time; one that does not fit is drawn
	// again, so short faults fill what long ones cannot. A schedule too
	// crowded to hold every fault stops short, and the run reports how many
	// it applied.
	for placed, attempts := 0, 0; placed < cfg.Faults && attempts < 100*cfg.Faults; attempts++ {
		var kind FaultKind
		switch r := rng.IntN(100); {
		case r < 30:
			kind = FPartition
		case r < 45:
			kind = FSlow
		case r < 70:
			kind = FKill
		case r < 88:
			kind = FPause
		default:
			kind = FRestart
		}
		var dur time.Duration
		switch kind {
		case FPartition:
			dur = span(4*time.Second, 15*time.Second)
		case FKill:
			dur = span(2*time.Second, 10*time.Second)
		case FSlow:
			dur = span(3*time.Second, 30*time.Second)
		case FPause:
			dur = span(min(pauseMin, cfg.PauseFor), min(pauseMax, cfg.PauseFor))
		case FRestart:
			dur = restartDown
		}
		dur = min(dur, d/2)
		at := time.Duration(rng.Float64() * float64(d-dur))
		iv := interval{at, at + dur + time.Second} // a second's gap before the next fault there
		if kind == FPartition {
			if !free(iv, parts) {
				continue
			}
			parts = append(parts, iv)
			shape, cut := drawShape(n, rng)
			p.add(Fault{At: at, Kind: FPartition, Shape: shape, Cut: cut}, Fault{At: at + dur, Kind: FHeal})
			placed++
			continue
		}
		if kind == FSlow {
			if !free(iv, slows) {
				continue
			}
			slows = append(slows, iv)
			shape, links := drawSlow(n, rng)
			p.add(Fault{At: at, Kind: FSlow, Shape: shape, Links: links}, Fault{At: at + dur, Kind: FUnslow})
			placed++
			continue
		}
		i := rng.IntN(n)
		if !free(iv, busy[i]) || n-downOver(iv) <= 2 {
			continue
		}
		busy[i] = append(busy[i], iv)
		switch kind {
		case FKill:
			p.add(Fault{At: at, Kind: FKill, Node: i}, Fault{At: at + dur, Kind: FStart, Node: i})
		case FPause:
			p.add(Fault{At: at, Kind: FPause, Node: i, For: dur}, Fault{At: at + dur, Kind: FUnpause, Node: i})
		case FRestart:
			p.add(Fault{At: at, Kind: FRestart, Node: i})
		}
		placed++
	}
}

// drawSlow picks the links a slow fault slows: every link of one node (a
// node on a bad line), or each link with probability 1/3 (at least one).
func drawSlow(n int, rng *rand.Rand) (string, [][2]int) {
	if n < 2 {
		return "none", nil
	}
	if rng.IntN(2) == 0 {
		i := rng.IntN(n)
		var others []int
		for j := range n {
			if j != i {
				others = append(others, j)
			}
		}
		return "node", cutBetween([]int{i}, others)
	}
	var out [][2]int
	for i := range n {
		for j := i + 1; j < n; j++ {
			if rng.IntN(3) == 0 {
				out = append(out, [2]int{i, j})
			}
		}
	}
	if len(out) == 0 {
		i := rng.IntN(n - 1)
		out = append(out, [2]int{i, i + 1})
	}
	return "links", out
}

// drawShape picks a partition shape and the links it cuts.
func drawShape(n int, rng *rand.Rand) (string, [][2]int) {
	perm := rng.Perm(n)
	switch r := rng.IntN(3); {
	case r == 0 || n < 3:
		return "halves", cutBetween(perm[:n/2], perm[n/2:])
	case r == 1 && n >= 3:
		// perm[0] is the bridge, linked to both sides, which are not linked
		// to each other: traffic between them must go through it.
		rest := perm[1:]
		h := len(rest) / 2
		return "bridge", cutBetween(rest[:h], rest[h:])
	default:
		return "isolate", cutBetween(perm[:1], perm[1:])
	}
}

// eligible returns a function telling which nodes the workload may send to at
// offset t: those not killed, paused or restarting as the plan schedules it.
func (p plan) eligible() func(time.Duration) []int {
	type span struct {
		node     int
		from, to time.Duration
	}
	var spans []span
	open := map[int]time.Duration{}
	for _, f := range p.faults {
		switch f.Kind {
		case FKill, FPause:
			open[f.Node] = f.At
		case FStart, FUnpause:
			end := f.At
			if f.Kind == FStart {
				end += restartDown
			}
			spans = append(spans, span{f.Node, open[f.Node], end})
			delete(open, f.Node)
		case FRestart:
			spans = append(spans, span{f.Node, f.At, f.At + restartDown})
		}
	}
	return func(t time.Duration) []int {
		out := make([]int, 0, p.n)
	next:
		for i := range p.n {
			for _, s := range spans {
				if s.node == i && s.from <= t && t < s.to {
					continue next
				}
			}
			out = append(out, i)
		}
		return out
	}
}
