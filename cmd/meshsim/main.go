package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/gossipmesh/gossipmesh/simulations"
	"github.com/gossipmesh/gossipmesh/simulations/cluster"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1 // not converged, or writes lost
	exitUnavailable = 2 // bad usage, or a scenario/backend not built yet
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// summary is printed when no run took place, so the last stdout line is
// JSON in every case.
type summary struct {
	Scenario  string `json:"scenario"`
	Nodes     int    `json:"nodes"`
	Seed      int64  `json:"seed"`
	Converged bool   `json:"converged"`
	Skipped   bool   `json:"skipped"`
	Error     string `json:"error"`
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg := simulations.DefaultConfig()
	fs := flag.NewFlagSet("meshsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Scenario, "scenario", cfg.Scenario, "scenario: "+strings.Join(simulations.Scenarios(), ", ")+"; with --backend docker: "+strings.Join(cluster.Scenarios(), ", "))
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "number of nodes (docker backend: default 5)")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the topology, identities, faults and workload")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long the workload runs (faults happen inside it; docker backend: default 30s)")
	fs.Float64Var(&cfg.Workload.Rate, "rate", 200, "operations per second over the whole mesh")
	fs.IntVar(&cfg.Workload.Keys, "keys", 64, "distinct keys per CRDT kind")
	fs.Float64Var(&cfg.Workload.Zipf, "zipf", 0, "key skew: 0 uniform, or a Zipf exponent > 1")
	fs.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "partition count P")
	fs.DurationVar(&cfg.SyncInterval, "sync-interval", cfg.SyncInterval, "mean anti-entropy interval of the nodes")
	fs.IntVar(&cfg.Degree, "degree", cfg.Degree, "topology neighbours per node")
	fs.DurationVar(&cfg.Timeout, "timeout", 0, "how long to wait for convergence after the last fault and write (0: 30s or 0.5s per node)")
	fs.DurationVar(&cfg.Latency, "latency", 0, "one-way link latency (0: the scenario's)")
	fs.Float64Var(&cfg.Bandwidth, "bandwidth", 0, "per-link bandwidth in bytes/s (0: unlimited)")
	out := fs.String("out", "", "directory for series.csv, converged.png and bytes.png (docker backend: also history.jsonl, faults.jsonl, node logs)")
	backend := fs.String("backend", "mocknet", "mocknet (in process) or docker (real meshd containers)")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	verbose := fs.Bool("v", false, "node logs (warnings and up) on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	dk := cluster.DefaultConfig()
	fs.IntVar(&dk.Faults, "faults", dk.Faults, "docker backend, random-faults: number of faults")
	fs.DurationVar(&dk.PauseFor, "pause", dk.PauseFor, "docker backend: how long a paused node stays frozen")
	fs.StringVar(&dk.Image, "image", "", "docker backend: meshd image to run (default: build it from this module)")
	fs.BoolVar(&dk.KeepOnFailure, "keep", false, "docker backend: leave the containers and networks of a failed run")
	fs.IntVar(&dk.Replication, "replication", dk.Replication, "docker backend: the nodes' replication factor R (0: every node holds every partition; the in-process backend's sharded scenario sets its own)")
	if err := fs.Parse(args); err != nil {
		return exitUnavailable
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "meshsim: unexpected argument %q\n", fs.Arg(0))
		return exitUnavailable
	}
	unavailable := func(err error) int {
		fmt.Fprintf(stderr, "meshsim: %v\n", err)
		printJSON(stdout, summary{Scenario: cfg.Scenario, Nodes: cfg.Nodes, Seed: cfg.Seed, Skipped: true, Error: err.Error()})
		return exitUnavailable
	}
	switch *backend {
	case "mocknet":
	case "docker":
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		dk.Scenario, dk.Nodes, dk.Seed = cfg.Scenario, cfg.Nodes, cfg.Seed
		if !set["nodes"] {
			dk.Nodes = 5
		}
		if set["duration"] {
			dk.Duration = cfg.Duration
		}
		if set["sync-interval"] {
			dk.SyncInterval = cfg.SyncInterval
		}
		if set["timeout"] {
			dk.Timeout = cfg.Timeout
		}
		if set["rate"] {
			dk.Workload.Rate = cfg.Workload.Rate
		}
		dk.Workload.Keys, dk.Workload.Zipf, dk.Partitions = cfg.Workload.Keys, cfg.Workload.Zipf, cfg.Partitions
		dk.Out = *out
		if !*quiet {
			dk.Progress = stderr
		}
		return runDocker(dk, stdout, stderr, unavailable)
	default:
		return unavailable(fmt.Errorf("--backend %q: want mocknet or docker", *backend))
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	if *verbose {
		cfg.NodeLogger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return unavailable(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return unavailable(err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		// Shutting hundreds of in-process nodes down can take long (or
		// hang on a stream mocknet left blocked); an interrupted run
		// must still end.
		select {
		case <-finished:
			return
		case <-ctx.Done():
		}
		select {
		case <-finished:
		case <-time.After(shutdownGrace):
			fmt.Fprintf(stderr, "meshsim: interrupted, and the nodes did not shut down within %v; exiting\n", shutdownGrace)
			printJSON(stdout, summary{Scenario: cfg.Scenario, Nodes: cfg.Nodes, Seed: cfg.Seed, Error: "interrupted"})
			os.Exit(exitFailed)
		}
	}()
	res, err := simulations.Run(ctx, cfg)
	if err != nil {
		if errors.Is(err, simulations.ErrUnknownScenario) || errors.Is(err, simulations.ErrInvalidConfig) {
			return unavailable(err)
		}
		fmt.Fprintf(stderr, "meshsim: %v\n", err)
		printJSON(stdout, summary{Scenario: cfg.Scenario, Nodes: cfg.Nodes, Seed: cfg.Seed, Error: err.Error()})
		return exitFailed
	}
	if *out != "" {
		start := time.Now()
		if err := simulations.WriteOutputs(*out, res); err != nil {
			fmt.Fprintf(stderr, "meshsim: writing %s: %v\n", *out, err)
			res.Error = strings.TrimPrefix(res.Error+"; ", "; ") + "outputs: " + err.Error()
		} else if !*quiet {
			fmt.Fprintf(stderr, "meshsim: wrote series.csv, converged.png, bytes.png to %s in %v\n", *out, time.Since(start).Round(time.Millisecond))
		}
	}
	for _, v := range res.Violations {
		fmt.Fprintf(stderr, "meshsim: violation: %s\n", v)
	}
	printJSON(stdout, res)
	if err := res.Err(); err != nil {
		fmt.Fprintf(stderr, "meshsim: FAIL: %v\n", err)
		return exitFailed
	}
	if !*quiet {
		fmt.Fprintf(stderr, "meshsim: OK: converged in %d ms after quiescence, %d acknowledged writes, none lost\n", res.ConvergenceMS, res.AckedWrites)
	}
	return exitOK
}

func printJSON(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	fmt.Fprintln(w, string(b))
}

// shutdownGrace is how long an interrupted in-process run may take to shut
// its nodes down before meshsim exits anyway.
const shutdownGrace = 20 * time.Second

// runDocker runs a scenario on meshd containers (package cluster) and
// prints the same summary line as the in-process backend, with its fault
// counts and the run's ID.
func runDocker(cfg cluster.Config, stdout, stderr io.Writer, unavailable func(error) int) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := cluster.Run(ctx, cfg)
	if err != nil {
		if errors.Is(err, cluster.ErrNoDocker) || errors.Is(err, cluster.ErrUnknownScenario) ||
			errors.Is(err, cluster.ErrInvalidConfig) || errors.Is(err, cluster.ErrBuild) {
			return unavailable(err)
		}
		fmt.Fprintf(stderr, "meshsim: %v\n", err)
		printJSON(stdout, summary{Scenario: cfg.Scenario, Nodes: cfg.Nodes, Seed: cfg.Seed, Error: err.Error()})
		return exitFailed
	}
	for _, v := range res.Violations {
		fmt.Fprintf(stderr, "meshsim: violation: %s\n", v)
	}
	printJSON(stdout, res)
	if err := res.Err(); err != nil {
		fmt.Fprintf(stderr, "meshsim: FAIL: %v\n", err)
		return exitFailed
	}
	if cfg.Progress != nil {
		fmt.Fprintf(stderr, "meshsim: OK: equal roots %d ms after quiescence (%d ms after the last fault), %d acknowledged writes, none lost\n",
			res.ConvergenceMS, res.SinceLastFaultMS, res.AckedWrites)
	}
	return exitOK
}
