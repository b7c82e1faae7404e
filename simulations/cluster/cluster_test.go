package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tests run real containers and are skipped when no Docker engine answers.
// The image is built once per test binary.

var (
	imageOnce sync.Once
	imageRef  string
	imageErr  error
)

// needDocker skips the test without an engine and returns the meshd image.
func needDocker(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	ctx := context.Background()
	if err := Available(ctx); err != nil {
		t.Skipf("no Docker engine reachable (`docker info` failed), skipping the container test: %v", err)
	}
	imageOnce.Do(func() {
		if ref := os.Getenv("GOSSIPMESH_IMAGE"); ref != "" {
			imageRef = ref
			return
		}
		imageRef, imageErr = buildImage(ctx, docker{bin: "docker"}, func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) })
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return imageRef
}

// leftovers lists the containers and networks a run left behind. A network
// the engine still counts an endpoint on, with no container attached (a
// known engine race when containers are killed under load: `docker network
// inspect` shows none, and `network disconnect -f` finds no endpoint), is
// logged, not failed: nothing of the run is running, and only the engine
// can release it.
func leftovers(t *testing.T, runID string) string {
	t.Helper()
	d := docker{bin: "docker"}
	ctx := context.Background()
	cs, err := d.run(ctx, "ps", "-aq", "--filter", "label="+labelKey+"="+runID)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := d.run(ctx, "network", "ls", "-q", "--filter", "label="+labelKey+"="+runID)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, n := range strings.Fields(ns) {
		attached, err := d.run(ctx, "network", "inspect", "--format", "{{len .Containers}}", n)
		if err == nil && attached == "0" {
			t.Logf("network %s of run %s: the engine keeps a stale endpoint on it (no container attached)", n, runID)
			continue
		}
		left = append(left, n)
	}
	return strings.TrimSpace(cs + " " + strings.Join(left, " "))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func runScenario(t *testing.T, cfg Config) *Result {
	t.Helper()
	t.Logf("scenario %s, %d nodes, seed %d", cfg.Scenario, cfg.Nodes, cfg.Seed)
	cfg.Image = needDocker(t)
	cfg.Progress = testWriter{t}
	cfg.Out = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("result: converged %v in %d ms (%d ms after the last fault), %d acked, %d lost, %d faults %v",
		res.Converged, res.ConvergenceMS, res.SinceLastFaultMS, res.AckedWrites, res.LostWrites, res.Faults, res.FaultKinds)
	if err := res.Err(); err != nil {
		t.Fatalf("%v; violations: %v", err, res.Violations)
	}
	if res.AckedWrites == 0 {
		t.Fatal("no acknowledged write")
	}
	if left := leftovers(t, res.RunID); left != "" {
		t.Errorf("run %s left containers or networks behind: %s", res.RunID, left)
	}
	for _, f := range []string{"history.jsonl", "faults.jsonl", "node-0.log", "series.csv", "converged.png", "bytes.png"} {
		if st, err := os.Stat(cfg.Out + "/" + f); err != nil || (st.Size() == 0 && f != "faults.jsonl") {
			t.Errorf("%s: %v", f, err)
		}
	}
	// The last sample is taken after equal roots were seen.
	if b, err := os.ReadFile(cfg.Out + "/series.csv"); err == nil {
		rows := strings.Split(strings.TrimSpace(string(b)), "\n")
		if last := rows[len(rows)-1]; len(rows) < 2 || !strings.HasSuffix(last, ",1.0000") {
			t.Errorf("series.csv: %d rows, last %q, want every node converged", len(rows), last)
		}
	}
	return res
}

func TestPartitionHeal(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Scenario, cfg.Seed, cfg.Duration, cfg.Timeout = "partition-heal", 3, 12*time.Second, 30*time.Second
	res := runScenario(t, cfg)
	if res.FaultKinds["partition"] != 1 {
		t.Errorf("faults %v, want one partition", res.FaultKinds)
	}
}

// TestRandomFaults mixes partitions, kill -9 then start, pauses and
// restarts; seed 7 draws every kind (2 each).
func TestRandomFaults(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Scenario, cfg.Seed, cfg.Faults = "random-faults", 7, 8
	cfg.Duration, cfg.PauseFor, cfg.Timeout = 40*time.Second, 6*time.Second, 30*time.Second
	res := runScenario(t, cfg)
	for _, k := range []string{"partition", "kill", "pause", "restart"} {
		if res.FaultKinds[k] == 0 {
			t.Errorf("no %s among the faults %v", k, res.FaultKinds)
		}
	}
	if res.SinceLastFaultMS > 10_000 {
		t.Errorf("equal roots %d ms after the last fault, want within 10 s", res.SinceLastFaultMS)
	}
}

// TestRandomFaultsPlan checks the schedule without Docker: reproducible
// from the seed, the requested number of faults, one partition and one set
// of slow links at a time, pauses of 5-20 s, at least two nodes running,
// every fault ended by the end of the run.
func TestRandomFaultsPlan(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		cfg := DefaultConfig()
		cfg.Scenario, cfg.Seed, cfg.Duration = "random-faults", seed, 3*time.Minute
		if err := cfg.validate(); err != nil {
			t.Fatal(err)
		}
		draw := func() plan {
			p, err := makePlan(&cfg, rand.New(rand.NewPCG(uint64(seed), 1)))
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		p, q := draw(), draw()
		if fmt.Sprint(p.faults) != fmt.Sprint(q.faults) {
			t.Fatalf("seed %d: two draws differ", seed)
		}
		primaries, cut, slow, down := 0, false, false, map[int]bool{}
		for _, f := range p.faults {
			if f.At > cfg.Duration {
				t.Errorf("seed %d: %v after the end", seed, f)
			}
			if f.primary() {
				primaries++
			}
			switch f.Kind {
			case FPartition:
				if cut {
					t.Errorf("seed %d: %v while partitioned", seed, f)
				}
				cut = true
			case FHeal:
				cut = false
			case FSlow:
				if slow || len(f.Links) == 0 {
					t.Errorf("seed %d: %v while slow, or with no link", seed, f)
				}
				slow = true
			case FUnslow:
				slow = false
			case FKill, FPause:
				if down[f.Node] {
					t.Errorf("seed %d: %v on a node already down", seed, f)
				}
				down[f.Node] = true
				if f.Kind == FPause && (f.For < pauseMin || f.For > pauseMax) {
					t.Errorf("seed %d: %v, want a pause of %v to %v", seed, f, pauseMin, pauseMax)
				}
				if cfg.Nodes-len(down) < 2 {
					t.Errorf("seed %d: %v leaves fewer than two nodes", seed, f)
				}
			case FStart, FUnpause:
				delete(down, f.Node)
			}
		}
		if primaries != cfg.Faults || cut || slow || len(down) > 0 {
			t.Errorf("seed %d: %d faults (want %d), still cut %v, still slow %v, still down %v", seed, primaries, cfg.Faults, cut, slow, down)
		}
	}
}

// TestLinkFaults checks the packet filters on two real containers: a cut
// link carries nothing while both interfaces stay up, a slow link delays
// each direction by SlowDelay ± SlowJitter, and a healed link is fast.
// The probe is an HTTP call from inside node 0's network namespace to node
// 1's API at its link address (curl on the host, entered with nsenter).
func TestLinkFaults(t *testing.T) {
	image := needDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := DefaultConfig()
	cfg.Nodes = 2
	d := docker{bin: "docker"}
	top := &topology{d: d, runID: newRunID(), n: 2}
	defer func() { _ = d.removeByLabel(context.Background(), labelKey+"="+top.runID) }()
	if err := top.create(ctx, rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	f := newFleet(&cfg, d, top, image, t.Logf)
	if err := f.create(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.startAll(ctx); err != nil {
		t.Fatal(err)
	}
	em := netem{Delay: 200 * time.Millisecond, Jitter: 50 * time.Millisecond}
	fw := newFirewall(top, d, f.container, em, 1, t.Logf)
	defer fw.closeAll()
	probe := func() (time.Duration, error) {
		pid, err := fw.pid(ctx, 0)
		if err != nil {
			return 0, err
		}
		url := fmt.Sprintf("http://%s:7700/v1/id", top.linkIP(1, 0))
		start := time.Now()
		out, err := exec.CommandContext(ctx, "nsenter", "-t", fmt.Sprint(pid), "-n", "curl", "-sS", "-m", "3", "-o", "/dev/null", url).CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("%v: %s", err, out)
		}
		return time.Since(start), nil
	}
	fast, err := probe()
	if err != nil {
		t.Fatal(err)
	}
	// Connect and request: two round trips of two slowed directions each.
	if err := fw.syncAll(ctx, top.slow([][2]int{{0, 1}}, func(int) bool { return true })); err != nil {
		t.Fatal(err)
	}
	slow, err := probe()
	if err != nil {
		t.Fatal(err)
	}
	if slow < 4*150*time.Millisecond || slow > fast+4*250*time.Millisecond+500*time.Millisecond {
		t.Errorf("slow link: probe took %v (fast %v), want 4 delays of 150-250 ms", slow, fast)
	}
	if err := fw.syncAll(ctx, top.unslow()); err != nil {
		t.Fatal(err)
	}
	// Cut at node 1's end only, to see that either end's rules cut both ways.
	top.cut([][2]int{{0, 1}})
	if err := fw.sync(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if d, err := probe(); err == nil {
		t.Errorf("cut link: probe answered in %v", d)
	}
	if err := fw.syncAll(ctx, top.heal()); err != nil {
		t.Fatal(err)
	}
	healed, err := probe()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("probe: fast %v, slow %v, healed %v", fast, slow, healed)
	if healed > fast+time.Second {
		t.Errorf("healed link: probe took %v", healed)
	}
}
