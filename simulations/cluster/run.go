package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	gosync "sync"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/simulations"
)

// Result is the outcome of one cluster run: the in-process harness's
// summary (same fields, same meaning) and what only real containers have.
type Result struct {
	simulations.Result
	Backend string `json:"backend"`
	RunID   string `json:"run_id"`
	// Replication is the nodes' replication factor R (0: every node holds
	// every partition).
	Replication int `json:"replication"`
	// FaultKinds counts the faults applied, by kind.
	FaultKinds map[string]int `json:"fault_kinds"`
	// ReadbackErrors counts values read back over HTTP (GET kv, counter,
	// set on every node) that differ from the converged state.
	ReadbackErrors int `json:"readback_errors"`
}

// run is the state of one Run.
type run struct {
	cfg     Config
	d       docker
	plan    plan
	ops     []simulations.Op
	f       *fleet
	fw      *firewall
	history []simulations.Record
	t0      time.Time
	queues  []chan *simulations.Op
	workers gosync.WaitGroup
	starts  gosync.WaitGroup // background waits for restarted APIs

	mu        gosync.Mutex
	lastAck   time.Duration
	lastFault time.Duration
	faults    int
	kinds     map[string]int
	applied   []Fault
}

func (r *run) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "meshsim docker: "+format+"\n", args...)
	}
}

func (r *run) since() time.Duration { return time.Since(r.t0) }

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Run builds the meshd image (unless cfg.Image names one), starts
// cfg.Nodes containers on private networks, plays the workload through
// their HTTP APIs while the scenario's faults hit them, waits for equal
// roots, reads every key back from every node and checks the result
// against the model of package simulations. Containers and networks are
// removed at the end, also on failure (unless cfg.KeepOnFailure). An error
// means the run could not be carried out (no Docker: ErrNoDocker; bad
// config; build failure); whether the mesh converged with nothing lost is
// in the Result (Result.Err).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	wall := time.Now()
	r := &run{cfg: cfg, d: docker{bin: "docker"}, kinds: map[string]int{}}
	// The same derivation as simulations.Run, so partition-heal and churn
	// draw the same schedule and workload from a seed on both backends.
	master := mrand.New(mrand.NewPCG(uint64(cfg.Seed), 0x6a09e667f3bcc908))
	planRng := mrand.New(mrand.NewPCG(master.Uint64(), master.Uint64()))
	workRng := mrand.New(mrand.NewPCG(master.Uint64(), master.Uint64()))
	netRng := mrand.New(mrand.NewPCG(master.Uint64(), master.Uint64()))
	var err error
	if r.plan, err = makePlan(&r.cfg, planRng); err != nil {
		return nil, err
	}
	if err := r.d.available(ctx); err != nil {
		return nil, err
	}
	r.ops = cfg.Workload.Generate(workRng, cfg.Duration, r.plan.eligible())
	r.history = make([]simulations.Record, len(r.ops))
	image := cfg.Image
	if image == "" {
		if image, err = buildImage(ctx, r.d, r.progress); err != nil {
			return nil, err
		}
	}
	runID := newRunID()
	res := &Result{Backend: "docker", RunID: runID, FaultKinds: r.kinds, Replication: cfg.Replication}
	res.Scenario, res.Nodes, res.Seed, res.Ops = cfg.Scenario, cfg.Nodes, cfg.Seed, len(r.ops)
	res.DurationMS, res.SyncIntervalMS = cfg.Duration.Milliseconds(), cfg.SyncInterval.Milliseconds()
	res.ConvergenceMS, res.SinceLastFaultMS = -1, -1
	primaries := 0
	for _, f := range r.plan.faults {
		if f.primary() {
			primaries++
		}
	}
	r.progress("run %s: scenario %s, %d nodes, R=%d, seed %d: %d ops over %v, %d faults (%d steps)", runID, cfg.Scenario, cfg.Nodes, cfg.Replication, cfg.Seed, len(r.ops), cfg.Duration, primaries, len(r.plan.faults))
	for _, f := range r.plan.faults {
		r.progress("  scheduled: %v", f)
	}

	top := &topology{d: r.d, runID: runID, n: cfg.Nodes}
	ok := false
	defer func() {
		// A fresh context: cleanup must happen after an interrupt too.
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if r.fw != nil {
			r.fw.closeAll()
		}
		if cfg.Out != "" && r.f != nil {
			r.f.saveLogs(cctx, cfg.Out)
		}
		if !ok && cfg.KeepOnFailure {
			r.progress("keeping containers and networks of run %s (label %s=%s)", runID, labelKey, runID)
			return
		}
		if err := r.d.removeByLabel(cctx, labelKey+"="+runID); err != nil {
			r.progress("cleanup: %v", err)
		}
	}()
	if cfg.Out != "" {
		if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
			return nil, err
		}
	}
	if err := top.create(ctx, netRng); err != nil {
		return nil, err
	}
	r.f = newFleet(&r.cfg, r.d, top, image, r.progress)
	em := netem{Delay: cfg.SlowDelay, Jitter: cfg.SlowJitter, Loss: cfg.SlowLoss}
	r.fw = newFirewall(top, r.d, r.f.container, em, netRng.Uint64(), r.progress)
	if err := r.f.create(ctx); err != nil {
		return nil, err
	}
	if err := r.f.startAll(ctx); err != nil {
		return nil, err
	}
	r.progress("%d nodes up, every one a peer of every other", cfg.Nodes)

	r.t0 = time.Now()
	// The time series is only for --out; it runs through the convergence
	// wait, and the defer stops it on every early return.
	stopSampler := func() *simulations.Series { return nil }
	if cfg.Out != "" {
		stopSampler = r.startSampler(ctx)
		defer stopSampler()
	}
	r.startWorkers(ctx)
	stopTicker := r.tickProgress()
	err = r.play(ctx)
	stopTicker()
	for _, q := range r.queues {
		close(q)
	}
	r.workers.Wait()
	r.starts.Wait()
	if err != nil {
		return nil, err
	}
	quiet := max(r.lastFault, r.lastAck)
	r.progress("workload done at %v (%d faults applied); waiting for equal roots", r.since().Round(time.Millisecond), r.faults)
	convergedAt, convErr := r.awaitConvergence(ctx, quiet)
	res.Series = stopSampler()
	res.Faults = r.faults
	if convErr == nil {
		res.Converged = true
		res.ConvergenceMS = max(0, (convergedAt - quiet).Milliseconds())
		if r.faults > 0 {
			res.SinceLastFaultMS = (convergedAt - r.lastFault).Milliseconds()
		}
		r.progress("equal roots %v after quiescence, %v after the last fault", (convergedAt - quiet).Round(time.Millisecond), (convergedAt - r.lastFault).Round(time.Millisecond))
		final, readErrs, err := r.finalStates(ctx)
		if err != nil {
			res.Converged = false
			res.Error = err.Error()
		} else {
			rep := simulations.Check(r.history, final)
			res.LostWrites, res.ModelErrors, res.Unchecked = rep.Lost, rep.Errors, rep.Unchecked
			res.Violations = append(rep.Violations, readErrs...)
			res.ReadbackErrors = len(readErrs)
			res.ModelErrors += len(readErrs)
		}
	} else {
		res.Error = convErr.Error()
		r.progress("%v", convErr)
	}
	for _, rec := range r.history {
		switch rec.Outcome {
		case simulations.Acked:
			res.AckedWrites++
		case simulations.Indeterminate:
			res.Indeterminate++
		case simulations.Skipped:
			res.SkippedOps++
		}
	}
	// Bytes as each node's /metrics counts them per protocol, summed over
	// every process of every node.
	for i, m := range r.f.members {
		r.f.sampleBytes(ctx, i)
		res.BytesSent += m.sentBefore.Load()
		res.GossipBytes += m.gossipBefore.Load()
		res.SyncBytes += m.syncBefore.Load()
	}
	p50, p99, pmax := latencies(r.history)
	res.OpP50MS, res.OpP99MS, res.OpMaxMS = ms(p50), ms(p99), ms(pmax)
	res.WallMS = time.Since(wall).Milliseconds()
	if cfg.Out != "" {
		if err := r.writeOutputs(cfg.Out); err != nil {
			r.progress("writing %s: %v", cfg.Out, err)
		}
		// series.csv, converged.png and bytes.png, as the in-process
		// backend writes them.
		res.Series.Faults = r.faultMarks()
		if err := simulations.WriteOutputs(cfg.Out, &res.Result); err != nil {
			r.progress("writing %s: %v", cfg.Out, err)
		}
	}
	ok = res.Err() == nil
	return res, nil
}

// startWorkers starts one client per node, running its node's ops in
// order, as one application thread talking to its local node would.
func (r *run) startWorkers(ctx context.Context) {
	r.queues = make([]chan *simulations.Op, len(r.f.members))
	for i := range r.queues {
		q := make(chan *simulations.Op, 1<<14)
		r.queues[i] = q
		r.workers.Add(1)
		go func() {
			defer r.workers.Done()
			for op := range q {
				r.execute(ctx, r.f.members[i], op)
			}
		}()
	}
}

// execute runs one op against its node and records what the client saw.
// Register writes get the wall-clock window of the call as their stamp
// window (simulations.Record.StampMax): containers share the host's clock.
func (r *run) execute(ctx context.Context, m *member, op *simulations.Op) {
	rec := simulations.Record{Op: *op}
	defer func() { r.history[op.Seq] = rec }()
	start := time.Now()
	rec.Start = start.Sub(r.t0)
	if !m.is(stateUp) {
		rec.Outcome = simulations.Skipped
		rec.End = rec.Start
		return
	}
	octx, cancel := context.WithTimeout(ctx, r.cfg.OpTimeout)
	err := m.api.apply(octx, op)
	cancel()
	end := time.Now()
	rec.End = end.Sub(r.t0)
	if err != nil {
		rec.Outcome = simulations.Indeterminate
		rec.Err = err.Error()
		return
	}
	rec.Outcome = simulations.Acked
	r.mu.Lock()
	r.lastAck = max(r.lastAck, rec.End)
	r.mu.Unlock()
	if op.Kind == simulations.OpPut || op.Kind == simulations.OpDelete {
		rec.Stamp = crdt.Timestamp{Wall: start.UnixNano()}
		rec.StampMax = crdt.Timestamp{Wall: end.UnixNano(), Logical: ^uint32(0), Node: ^crdt.NodeID(0)}
		rec.StampOK = true
	}
}

// play walks the merged timeline of ops and faults in time order.
func (r *run) play(ctx context.Context) error {
	faults, ops := r.plan.faults, r.ops
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
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
	for len(faults) > 0 || len(ops) > 0 {
		if len(faults) > 0 && (len(ops) == 0 || faults[0].At <= ops[0].At) {
			f := faults[0]
			faults = faults[1:]
			if err := wait(f.At); err != nil {
				return err
			}
			if err := r.apply(ctx, f); err != nil {
				return err
			}
			continue
		}
		op := &ops[0]
		ops = ops[1:]
		if err := wait(op.At); err != nil {
			return err
		}
		r.queues[op.Node] <- op
	}
	return nil
}

// apply carries out one fault step with the docker CLI.
func (r *run) apply(ctx context.Context, f Fault) error {
	began := time.Now()
	r.progress("t=%v %v", r.since().Round(time.Millisecond), f)
	var err error
	name := func(i int) string { return r.f.container(i) }
	switch f.Kind {
	case FPartition, FHeal, FSlow, FUnslow:
		err = r.applyNet(ctx, f)
	case FKill:
		r.f.sampleBytes(ctx, f.Node)
		r.f.members[f.Node].state.Store(int32(stateDown))
		_, err = r.d.run(ctx, "kill", "--signal", "KILL", name(f.Node))
	case FStart:
		_, err = r.d.run(ctx, "start", name(f.Node))
		if err == nil {
			err = r.refilter(ctx, f.Node)
			r.f.awaitAPI(ctx, f.Node, &r.starts)
		}
	case FPause:
		r.f.members[f.Node].state.Store(int32(statePaused))
		_, err = r.d.run(ctx, "pause", name(f.Node))
	case FUnpause:
		_, err = r.d.run(ctx, "unpause", name(f.Node))
		if err == nil {
			r.f.members[f.Node].state.Store(int32(stateUp))
		}
	case FRestart:
		r.f.sampleBytes(ctx, f.Node)
		r.f.members[f.Node].state.Store(int32(stateStarting))
		_, err = r.d.run(ctx, "restart", "--time", "10", name(f.Node))
		if err == nil {
			err = r.refilter(ctx, f.Node)
			r.f.awaitAPI(ctx, f.Node, &r.starts)
		}
	}
	if err != nil {
		return fmt.Errorf("applying %v: %w", f, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// The fault's time is when it began to be applied, so repair done
	// while the docker command ran counts towards the convergence time.
	r.lastFault = began.Sub(r.t0)
	if f.primary() {
		r.faults++
		r.kinds[f.Name]++
	}
	f.At = r.lastFault
	r.applied = append(r.applied, f)
	r.progress("  %v took %v", f.Kind, time.Since(began).Round(time.Millisecond))
	return nil
}

// applyNet changes the links as f says and syncs the packet filters of
// the nodes at their ends.
func (r *run) applyNet(ctx context.Context, f Fault) error {
	top := r.f.top
	var touched map[int]bool
	switch f.Kind {
	case FPartition:
		touched = top.cut(f.Cut)
	case FHeal:
		touched = top.heal()
	case FSlow:
		touched = top.slow(f.Links, func(i int) bool { return !r.f.members[i].is(stateDown) })
	case FUnslow:
		touched = top.unslow()
	}
	return r.fw.syncAll(ctx, touched)
}

// refilter sets the rules of node i again after a start or restart gave
// it a new network namespace (and closes a reader left in the old one).
// Until then the other end's rules keep a cut link cut.
func (r *run) refilter(ctx context.Context, i int) error {
	if r.f.top.filtered(i) {
		r.progress("  node %d: packet filter set again in its new network namespace", i)
	}
	return r.fw.sync(ctx, i)
}

// tickProgress reports the workload's progress every 5 s until the
// returned function is called.
func (r *run) tickProgress() (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(5 * time.Second)
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
			up := 0
			for _, m := range r.f.members {
				if m.is(stateUp) {
					up++
				}
			}
			due, _ := slices.BinarySearchFunc(r.ops, r.since(), func(op simulations.Op, t time.Duration) int { return int(op.At - t) })
			r.progress("t=%v %d/%d ops sent, %d faults, %d/%d nodes up", r.since().Round(time.Second), due, len(r.ops), faults, up, len(r.f.members))
		}
	}()
	return func() { close(done); <-finished }
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// latencies returns the median, 99th percentile and maximum time an
// acknowledged op took.
func latencies(history []simulations.Record) (p50, p99, maxd time.Duration) {
	var ds []time.Duration
	for _, r := range history {
		if r.Outcome == simulations.Acked {
			ds = append(ds, r.End-r.Start)
		}
	}
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1]
}
