package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		{"--scenario", "sharded"},
		{"--backend", "docker"},
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
