package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gossipmesh/gossipmesh/simulations/cluster"
)

// lastJSON decodes the last line of stdout, which the contract says is one
// JSON object.
func lastJSON(t *testing.T, stdout string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("last stdout line is not JSON: %v\n%s", err, stdout)
	}
	return m
}

func TestRunSmallSteadyWritesOutputs(t *testing.T) {
	const seed = "5"
	t.Logf("seed %s", seed)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"--scenario", "steady", "--nodes", "4", "--seed", seed, "--duration", "700ms", "--rate", "100", "--out", dir}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	m := lastJSON(t, stdout.String())
	for _, k := range []string{"scenario", "nodes", "seed", "converged", "convergence_ms", "acked_writes", "lost_writes", "bytes_sent"} {
		if _, ok := m[k]; !ok {
			t.Errorf("summary lacks %q: %v", k, m)
		}
	}
	if m["converged"] != true || m["lost_writes"] != float64(0) || m["acked_writes"] == float64(0) {
		t.Errorf("summary: %v", m)
	}
	for _, f := range []string{"series.csv", "converged.png", "bytes.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if !strings.Contains(stderr.String(), "meshsim:") {
		t.Errorf("no progress on stderr")
	}
}

func TestUnavailableExitsTwoWithJSON(t *testing.T) {
	for _, args := range [][]string{
		{"--backend", "docker", "--scenario", "no-such"},
		{"--backend", "podman"},
		{"--scenario", "no-such"},
		{"--nodes", "0"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != exitUnavailable {
			t.Errorf("%v: exit %d, want %d", args, code, exitUnavailable)
			continue
		}
		m := lastJSON(t, stdout.String())
		if m["converged"] != false || m["error"] == "" {
			t.Errorf("%v: summary %v", args, m)
		}
	}
}

// TestDockerBackend runs a short partition-heal on five meshd containers;
// it is skipped when no Docker engine answers.
func TestDockerBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("docker backend: skipped with -short")
	}
	if err := cluster.Available(context.Background()); err != nil {
		t.Skipf("no Docker engine reachable (`docker info` failed), skipping: %v", err)
	}
	const seed = "2"
	t.Logf("seed %s", seed)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"--backend", "docker", "--scenario", "partition-heal", "--nodes", "5", "--seed", seed, "--duration", "8s", "--out", dir}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	m := lastJSON(t, stdout.String())
	for _, k := range []string{"scenario", "nodes", "seed", "converged", "convergence_ms", "acked_writes", "lost_writes", "bytes_sent", "faults", "backend"} {
		if _, ok := m[k]; !ok {
			t.Errorf("summary lacks %q: %v", k, m)
		}
	}
	if m["converged"] != true || m["lost_writes"] != float64(0) || m["nodes"] != float64(5) || m["backend"] != "docker" {
		t.Errorf("summary: %v", m)
	}
	for _, f := range []string{"history.jsonl", "series.csv", "converged.png", "bytes.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
