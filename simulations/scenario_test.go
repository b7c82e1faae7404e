package simulations

import (
	"cmp"
	"context"
	"os"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// scenarioNodes is the mesh size of the scenario tests.
const scenarioNodes = 20

// testSeed is the seed of the scenario tests; MESHSIM_SEED overrides it to
// replay or explore.
func testSeed(t *testing.T) int64 {
	if s := os.Getenv("MESHSIM_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("MESHSIM_SEED: %v", err)
		}
		return v
	}
	return 1
}

func runScenario(t *testing.T, name string) {
	// Virtual time (testing/synctest): mocknet, GossipSub and the nodes
	// wait on timers and channels only, so a bubble's clock jumps ahead
	// whenever every goroutine is blocked. Latency, intervals and
	// timeouts are exact and the run takes only the CPU time it needs.
	synctest.Test(t, func(t *testing.T) { runScenarioNow(t, name) })
}

func runScenarioNow(t *testing.T, name string) {
	seed := testSeed(t)
	t.Logf("scenario %s, seed %d (replay: MESHSIM_SEED=%d or meshsim --scenario %s --nodes %d --seed %d)", name, seed, seed, name, scenarioNodes, seed)
	cfg := DefaultConfig()
	cfg.Scenario = name
	cfg.Nodes = scenarioNodes
	cfg.Seed = seed
	cfg.Duration = 2 * time.Second
	cfg.Workload.Rate = 150
	if testing.Verbose() {
		cfg.Progress = tWriter{t}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("converged=%v in %d ms, acked %d, lost %d, unexplained %d, unchecked members %d, bytes %d, wall %d ms",
		res.Converged, res.ConvergenceMS, res.AckedWrites, res.LostWrites, res.ModelErrors, res.Unchecked, res.BytesSent, res.WallMS)
	for _, v := range res.Violations {
		t.Log(v)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if res.AckedWrites == 0 {
		t.Fatal("no write was acknowledged")
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

func TestSteady(t *testing.T)        { runScenario(t, "steady") }
func TestPartitionHeal(t *testing.T) { runScenario(t, "partition-heal") }
func TestChurn(t *testing.T)         { runScenario(t, "churn") }
func TestLateJoiner(t *testing.T)    { runScenario(t, "late-joiner") }
func TestClockSkew(t *testing.T)     { runScenario(t, "clock-skew") }
func TestLossy(t *testing.T)         { runScenario(t, "lossy") }
func TestSharded(t *testing.T)       { runScenario(t, "sharded") }
func TestDeletes(t *testing.T)       { runScenario(t, "deletes") }

// TestScenarioAtScale runs one scenario at a large size in virtual time,
// where convergence is measured by the protocol's own delays rather than
// by how fast 2 cores get through N nodes' work. It is long, so it runs
// only when MESHSIM_SCALE names the size (MESHSIM_SCENARIO the scenario,
// default partition-heal), e.g.
//
//	MESHSIM_SCALE=100 go test ./simulations -run TestScenarioAtScale -v
func TestScenarioAtScale(t *testing.T) {
	size, _ := strconv.Atoi(os.Getenv("MESHSIM_SCALE"))
	if size <= 0 {
		t.Skip("set MESHSIM_SCALE=N to run a scenario at N nodes in virtual time")
	}
	name := cmp.Or(os.Getenv("MESHSIM_SCENARIO"), "partition-heal")
	synctest.Test(t, func(t *testing.T) {
		seed := testSeed(t)
		cfg := DefaultConfig()
		cfg.Scenario, cfg.Nodes, cfg.Seed = name, size, seed
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		res, err := Run(ctx, cfg)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		t.Logf("scenario %s, %d nodes, seed %d, virtual time: converged=%v %d ms after quiescence, %d ms after the last fault; acked %d, lost %d, unexplained %d; gossip %d bytes, sync %d bytes; peak RSS %d MB",
			name, size, seed, res.Converged, res.ConvergenceMS, res.SinceLastFaultMS, res.AckedWrites, res.LostWrites, res.ModelErrors,
			res.GossipBytes, res.SyncBytes, res.PeakRSSBytes>>20)
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
	})
}
