package simulations

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	gosync "sync"
	"time"

	"github.com/gossipmesh/gossipmesh/node"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// Result is the outcome of one run. Its JSON form is meshsim's summary line.
type Result struct {
	Scenario  string `json:"scenario"`
	Nodes     int    `json:"nodes"`
	Seed      int64  `json:"seed"`
	Converged bool   `json:"converged"`
	// ConvergenceMS is the time from quiescence (the later of the last
	// fault and the last acknowledged write) to the first observation of
	// equal roots on every node; -1 when not converged.
	ConvergenceMS int64 `json:"convergence_ms"`
	// SinceLastFaultMS is the time from the last fault to convergence; -1
	// when not converged or when the scenario has no faults.
	SinceLastFaultMS int64 `json:"since_last_fault_ms"`

	AckedWrites   int      `json:"acked_writes"`
	LostWrites    int      `json:"lost_writes"`
	ModelErrors   int      `json:"model_errors"`
	Unchecked     int      `json:"unchecked_members"`
	Indeterminate int      `json:"indeterminate_writes"`
	SkippedOps    int      `json:"skipped_ops"`
	Ops           int      `json:"ops"`
	Violations    []string `json:"violations,omitempty"`

	BytesSent    uint64 `json:"bytes_sent"` // stream bytes written by all nodes, every protocol
	GossipBytes  uint64 `json:"gossip_bytes"`
	SyncBytes    uint64 `json:"sync_bytes"`
	Messages     uint64 `json:"messages"`
	LostMessages uint64 `json:"lost_messages"` // dropped by the loss model

	OpP50MS float64 `json:"op_p50_ms"` // latency of acknowledged ops
	OpP99MS float64 `json:"op_p99_ms"`
	OpMaxMS float64 `json:"op_max_ms"`

	Faults         int    `json:"faults"`
	DurationMS     int64  `json:"duration_ms"`
	SyncIntervalMS int64  `json:"sync_interval_ms"`
	WallMS         int64  `json:"wall_ms"`
	PeakRSSBytes   int64  `json:"peak_rss_bytes,omitempty"`
	Error          string `json:"error,omitempty"`

	// Series is the sampled time series, for CSV and plots.
	Series *Series `json:"-"`
}

// Err returns nil when the run converged with nothing lost, else an error
// wrapping ErrNotConverged or ErrLostWrites.
func (r *Result) Err() error {
	switch {
	case !r.Converged:
		return fmt.Errorf("%w: %s", ErrNotConverged, r.Error)
	case r.LostWrites > 0 || r.ModelErrors > 0:
		return fmt.Errorf("%w: %d lost, %d unexplained", ErrLostWrites, r.LostWrites, r.ModelErrors)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func linkOptions(p Plan) mocknet.LinkOptions {
	return mocknet.LinkOptions{Latency: p.Latency, Bandwidth: p.Bandwidth}
}

// run is the state of one Run.
type run struct {
	cfg     Config
	plan    Plan
	ops     []Op
	c       *cluster
	history []Record
	t0      time.Time
	queues  []chan *Op
	workers gosync.WaitGroup

	mu        gosync.Mutex
	lastAck   time.Duration
	lastFault time.Duration
	faults    int
	marks     []FaultMark
}

func (r *run) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "meshsim: "+format+"\n", args...)
	}
}

func (r *run) since() time.Duration { return time.Since(r.t0) }

// Run executes one simulation: it starts the nodes on the simulated
// network, plays the workload and the fault schedule, waits for
// convergence, and checks the converged state against the history. An
// error means the run could not be carried out (bad config, unknown
// scenario, a node failing to start); whether the mesh converged with
// nothing lost is in the Result (see Result.Err).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	wall := time.Now()
	master := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6a09e667f3bcc908))
	planRng := rand.New(rand.NewPCG(master.Uint64(), master.Uint64()))
	workRng := rand.New(rand.NewPCG(master.Uint64(), master.Uint64()))
	netRng := rand.New(rand.NewPCG(master.Uint64(), master.Uint64()))
	plan, err := MakePlan(cfg.Scenario, cfg.Nodes, cfg.Duration, planRng)
	if err != nil {
		return nil, err
	}
	if cfg.Latency > 0 {
		plan.Latency = cfg.Latency
	}
	if cfg.Bandwidth > 0 {
		plan.Bandwidth = cfg.Bandwidth
	}
	r := &run{cfg: cfg, plan: plan}
	if len(cfg.Workload.Mix) == 0 {
		cfg.Workload.Mix = plan.Mix
	}
	r.ops = cfg.Workload.Generate(workRng, cfg.Duration, plan.Eligible(cfg.Nodes))
	r.history = make([]Record, len(r.ops))
	r.progress("scenario %s, %d nodes, seed %d: %d ops over %v, %d fault events", cfg.Scenario, cfg.Nodes, cfg.Seed, len(r.ops), cfg.Duration, len(plan.Events))
	for _, e := range plan.Events {
		r.progress("  scheduled: %v", e)
	}
	r.c = newCluster(cfg, plan, netRng)
	defer r.c.closeAll()

	if err := r.startInitial(ctx); err != nil {
		return nil, err
	}
	res := &Result{
		Scenario: cfg.Scenario, Nodes: cfg.Nodes, Seed: cfg.Seed, Ops: len(r.ops),
		DurationMS: cfg.Duration.Milliseconds(), SyncIntervalMS: cfg.SyncInterval.Milliseconds(),
		ConvergenceMS: -1, SinceLastFaultMS: -1,
	}
	r.t0 = time.Now()
	smp := newSampler(r.c, cfg.SampleEvery, r.t0)
	go smp.loop(ctx)
	r.startWorkers(ctx)
	stopTicker := r.tickProgress()
	err = r.play(ctx)
	stopTicker()
	if err != nil {
		smp.stop()
		return nil, err
	}
	for _, q := range r.queues {
		close(q)
	}
	r.workers.Wait()
	quiet := max(r.lastFault, r.lastAck)
	r.progress("workload done at %v (%d faults applied); waiting for convergence", r.since().Round(time.Millisecond), r.faults)

	convergedAt, convErr := r.awaitConvergence(ctx, quiet)
	series := smp.stop()
	series.Faults = r.marks
	res.Series = series
	res.Faults = r.faults
	if convErr == nil {
		res.Converged = true
		res.ConvergenceMS = max(0, (convergedAt - quiet).Milliseconds())
		if r.faults > 0 {
			res.SinceLastFaultMS = (convergedAt - r.lastFault).Milliseconds()
		}
		r.progress("converged %v after quiescence", (convergedAt - quiet).Round(time.Millisecond))
		final, err := r.finalStates(ctx)
		if err != nil {
			res.Converged = false
			res.Error = err.Error()
		} else {
			var collectedBefore time.Duration
			if g := r.plan.TombstoneGrace; g > 0 {
				collectedBefore = r.since() - g
			}
			rep := CheckCollected(r.history, final, collectedBefore)
			res.LostWrites, res.ModelErrors, res.Unchecked = rep.Lost, rep.Errors, rep.Unchecked
			res.Violations = rep.Violations
		}
	} else {
		res.Error = convErr.Error()
		r.progress("%v", convErr)
	}
	for _, rec := range r.history {
		switch rec.Outcome {
		case Acked:
			res.AckedWrites++
		case Indeterminate:
			res.Indeterminate++
		case Skipped:
			res.SkippedOps++
		}
	}
	for _, s := range r.c.nodes {
		msgs, bytes := s.meter.total()
		res.Messages += msgs
		res.BytesSent += bytes
		res.GossipBytes += s.meter.bytes[classGossip].Load()
		res.SyncBytes += s.meter.bytes[classSync].Load()
		res.LostMessages += s.meter.lost.Load()
	}
	p50, p99, pmax := latencies(r.history)
	res.OpP50MS, res.OpP99MS, res.OpMaxMS = ms(p50), ms(p99), ms(pmax)
	res.WallMS = time.Since(wall).Milliseconds()
	res.PeakRSSBytes = peakRSS()
	return res, nil
}

// tickProgress reports the workload's progress every second until the
// returned function is called.
func (r *run) tickProgress() (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			r.mu.Lock()
			faults := r.faults
			r.mu.Unlock()
			due := sort.Search(len(r.ops), func(i int) bool { return r.ops[i].At > r.since() })
			r.progress("t=%v %d/%d ops sent, %d/%d faults, %d/%d nodes up",
				r.since().Round(100*time.Millisecond), due, len(r.ops), faults, len(r.plan.Events), len(r.c.upNodes()), len(r.c.nodes))
		}
	}()
	return func() { close(done); <-finished }
}

// startInitial starts the nodes that are up at time 0 and connects the
// topology, waiting until every node has a peer.
func (r *run) startInitial(ctx context.Context) error {
	for _, i := range r.plan.Initial {
		if err := r.c.start(ctx, i); err != nil {
			return err
		}
	}
	for _, i := range r.plan.Initial {
		r.c.dialNeighbors(ctx, i, func(j int) bool { return j < i })
	}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		lonely := 0
		for _, s := range r.c.upNodes() {
			if len(s.current().Peers()) == 0 && len(r.plan.Initial) > 1 {
				lonely++
			}
		}
		if lonely == 0 {
			r.progress("%d nodes up and connected", len(r.plan.Initial))
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("simulations: %d nodes have no peer after 30 s", lonely)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// startWorkers starts one client per node. A client runs its node's ops in
// order, as one application thread talking to its local node would.
func (r *run) startWorkers(ctx context.Context) {
	r.queues = make([]chan *Op, len(r.c.nodes))
	for i := range r.queues {
		q := make(chan *Op, 1<<14)
		r.queues[i] = q
		r.workers.Add(1)
		go func() {
			defer r.workers.Done()
			for op := range q {
				r.execute(ctx, r.c.nodes[i], op)
				r.c.nodes[i].busy.Done()
			}
		}()
	}
}

// play walks the merged timeline of ops and fault events in time order.
func (r *run) play(ctx context.Context) error {
	events := r.plan.Events
	ops := r.ops
	timer := time.NewTimer(0)
	defer timer.Stop()
	wait := func(at time.Duration) error {
		d := time.Until(r.t0.Add(at))
		if d <= 0 {
			return ctx.Err()
		}
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return nil
		}
	}
	<-timer.C
	for len(events) > 0 || len(ops) > 0 {
		// Events first at equal offsets: a crash at t takes the node down
		// before an op due at t.
		if len(events) > 0 && (len(ops) == 0 || events[0].At <= ops[0].At) {
			e := events[0]
			events = events[1:]
			if err := wait(e.At); err != nil {
				return err
			}
			if err := r.apply(ctx, e); err != nil {
				return err
			}
			continue
		}
		op := &ops[0]
		ops = ops[1:]
		if err := wait(op.At); err != nil {
			return err
		}
		s := r.c.nodes[op.Node]
		s.busy.Add(1)
		r.queues[op.Node] <- op
	}
	return nil
}

func (r *run) apply(ctx context.Context, e Event) error {
	r.progress("t=%v %v", r.since().Round(time.Millisecond), e)
	began := time.Now()
	defer func() { r.progress("  %v took %v", e.Kind, time.Since(began).Round(time.Millisecond)) }()
	switch e.Kind {
	case EvPartition:
		r.c.net.partition(e.Groups)
	case EvHeal:
		edges := r.c.net.heal()
		slices.SortFunc(edges, func(a, b [2]int) int { return a[0]*len(r.c.nodes) + a[1] - b[0]*len(r.c.nodes) - b[1] })
		// The nodes' own redial backoff may have grown during the
		// partition; a real network's peers would retry too, so the
		// harness reconnects the healed links at once.
		pairs := make([][2]int, len(edges))
		for k, ed := range edges {
			pairs[k] = [2]int{ed[1], ed[0]}
		}
		r.c.dialAsync(ctx, pairs)
	case EvCrash:
		if err := r.c.crash(e.Node); err != nil {
			r.progress("node %d close: %v", e.Node, err)
		}
	case EvRestart, EvJoin:
		if err := r.c.start(ctx, e.Node); err != nil {
			return err
		}
		var pairs [][2]int
		for _, j := range r.c.net.neighbors[e.Node] {
			if r.c.net.linked(e.Node, j) {
				pairs = append(pairs, [2]int{e.Node, j})
			}
		}
		r.c.dialAsync(ctx, pairs)
	}
	r.mu.Lock()
	// The fault's time is when it began to be applied (a heal relinks
	// everything first, then redials), so repair done while redialling
	// counts towards the convergence time.
	r.lastFault = began.Sub(r.t0)
	r.faults++
	label := e.Kind.String()
	if e.Kind != EvPartition && e.Kind != EvHeal {
		label = fmt.Sprintf("%s %d", e.Kind, e.Node)
	}
	r.marks = append(r.marks, FaultMark{T: r.lastFault, Label: label})
	r.mu.Unlock()
	return nil
}

// execute runs one op against its node and records what the client saw.
func (r *run) execute(ctx context.Context, s *simNode, op *Op) {
	rec := Record{Op: *op, Start: r.since()}
	defer func() {
		rec.End = r.since()
		r.history[op.Seq] = rec
		if rec.Outcome == Acked {
			r.mu.Lock()
			r.lastAck = max(r.lastAck, rec.End)
			r.mu.Unlock()
		}
	}()
	n := s.current()
	if n == nil {
		rec.Outcome = Skipped
		return
	}
	// A client that gives up early turns an op indeterminate, which weakens
	// the check; a large mesh in one process can be slow to answer, so the
	// client waits as long as the convergence deadline.
	octx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	key := []byte(op.Key)
	var err error
	switch op.Kind {
	case OpPut:
		err = n.Put(octx, key, []byte(op.Value))
	case OpDelete:
		err = n.Delete(octx, key)
	case OpIncr:
		_, err = n.Incr(octx, key, op.Delta)
	case OpSAdd:
		err = n.SAdd(octx, key, []byte(op.Value))
	case OpSRem:
		err = n.SRem(octx, key, []byte(op.Value))
	}
	if err != nil {
		rec.Outcome = Indeterminate
		rec.Err = err.Error()
		if !errors.Is(err, node.ErrClosed) {
			r.progress("op %d (%v %s on node %d): %v", op.Seq, op.Kind, op.Key, op.Node, err)
		}
		return
	}
	rec.Outcome = Acked
	if op.Kind == OpPut || op.Kind == OpDelete {
		ts, val, deleted, ok := s.store.stamp(op.Key)
		rec.Stamp, rec.StampOK = ts, ok
		rec.StampExact = ok && op.Kind == OpPut && !deleted && string(val) == op.Value
	}
}

// latencies returns the median, 99th percentile and maximum time an
// acknowledged op took.
func latencies(history []Record) (p50, p99, maxd time.Duration) {
	var ds []time.Duration
	for _, r := range history {
		if r.Outcome == Acked {
			ds = append(ds, r.End-r.Start)
		}
	}
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1]
}
