package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runMeshd runs the built meshd to its exit (within a minute) and returns
// its exit code, stdout and stderr.
func runMeshd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	meshd, _ := binaries(t)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(meshd, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("meshd %v still running after a minute; stderr:\n%s", args, stderr.String())
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// tcpListen is the /ip4/.../tcp/PORT part of a daemon's first TCP address.
func (d *daemon) tcpListen() string {
	listen, _, _ := strings.Cut(d.addr, "/p2p/")
	return listen
}

func TestE2EListenPortHeldByAnotherDaemon(t *testing.T) {
	a := startDaemon(t, t.TempDir())
	code, _, stderr := runMeshd(t, "--data", t.TempDir(), "--api", "127.0.0.1:0", "--mdns=false",
		"--listen", a.tcpListen(), "--log-level", "error")
	if code != 1 || !strings.Contains(stderr, "in use by another process") || !strings.Contains(stderr, a.tcpListen()) {
		t.Fatalf("second meshd on %s: exit %d, stderr %q; want exit 1 naming the address in use", a.tcpListen(), code, stderr)
	}
	if _, err := a.ctl("put", "k", "v"); err != nil {
		t.Fatalf("first daemon after the refused second: %v", err)
	}
}

func TestE2EDefaultListenPortIsFixed(t *testing.T) {
	meshd, _ := binaries(t)
	out, err := exec.Command(meshd, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("meshd --help: %v\n%s", err, out)
	}
	for _, want := range defaultListen() {
		if !strings.Contains(string(out), want) {
			t.Errorf("meshd --help does not show the default listen address %s", want)
		}
	}
}

func TestE2EDataDirInUseNamesThePID(t *testing.T) {
	dir := t.TempDir()
	a := startDaemon(t, dir)
	code, _, stderr := runMeshd(t, "--data", dir, "--api", "127.0.0.1:0", "--mdns=false",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--log-level", "error")
	want := fmt.Sprintf("%s is in use by another node (PID %d)", dir, a.cmd.Process.Pid)
	if code != 1 || !strings.Contains(stderr, want) || strings.Contains(stderr, "temporarily unavailable") {
		t.Fatalf("second meshd on one data dir: exit %d, stderr %q; want exit 1 and %q", code, stderr, want)
	}
}

func TestE2EVersionEverywhere(t *testing.T) {
	code, stdout, stderr := runMeshd(t, "--version")
	if code != 0 || !strings.HasPrefix(stdout, "meshd "+e2eVersion+" (go") {
		t.Fatalf("meshd --version: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	d := startDaemon(t, t.TempDir())
	var st struct{ Version string }
	getJSON(t, d.api+"/v1/status", &st)
	if st.Version != e2eVersion {
		t.Errorf("/v1/status version %q, want %q", st.Version, e2eVersion)
	}
	metrics := getText(t, d.api+"/metrics")
	if !regexp.MustCompile(`(?m)^gossipmesh_build_info\{.*version="` + regexp.QuoteMeta(e2eVersion) + `".*\} 1$`).MatchString(metrics) {
		t.Errorf("/metrics has no gossipmesh_build_info with version %s:\n%s", e2eVersion, grepLines(metrics, "build_info"))
	}
}

func getText(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, res.Status, err)
	}
	return string(b)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(getText(t, url)), v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// grepLines is the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestE2ECheckAndConfigPrint(t *testing.T) {
	code, stdout, stderr := runMeshd(t, "--config", exampleConfig, "--check")
	if code != 0 || stdout != "meshd: settings OK\n" {
		t.Fatalf("meshd --config %s --check: exit %d, stdout %q, stderr %q", exampleConfig, code, stdout, stderr)
	}
	code, _, stderr = runMeshd(t, "--config", exampleConfig, "--check", "--sync-interval", "1ms")
	if code != 2 || !strings.Contains(stderr, "--sync-interval must be at least") {
		t.Fatalf("--check with a bad flag: exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr = runMeshd(t, "--config", exampleConfig, "config", "print", "--mesh", "plant-7")
	if code != 0 || !strings.Contains(stdout, "\nmesh = \"plant-7\"\n") || !strings.Contains(stdout, "\nsync-interval = \"10s\"\n") {
		t.Fatalf("meshd config print: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// The report: 9223372036854775805 + 5 printed a negative number.
func TestE2ECounterOverflowIsRefused(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	if out, err := d.ctl("incr", "n", "9223372036854775805"); err != nil || out != "9223372036854775805\n" {
		t.Fatalf("incr: %q, %v", out, err)
	}
	out, err := d.ctl("incr", "n", "5")
	if err == nil || !strings.Contains(err.Error(), "int64 range") {
		t.Fatalf("incr past the int64 range: %q, %v; want a refusal naming the range", out, err)
	}
	if out, err := d.ctl("counter", "n"); err != nil || out != "9223372036854775805\n" {
		t.Fatalf("counter after the refusal: %q, %v", out, err)
	}
	res, err := http.Post(d.api+"/v1/counter/n", "application/json", strings.NewReader(`{"delta":5}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("POST /v1/counter past the range: %s, want 422", res.Status)
	}
}

func TestE2EJSONLogsAndLatencyMetrics(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--log-format", "json", "--log-level", "info")
	if err := d.put("k", "v"); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.get("k"); !ok {
		t.Fatal("k not read back")
	}
	metrics := getText(t, d.api+"/metrics")
	for _, want := range []string{
		"gossipmesh_put_duration_seconds_count 1\n",
		"gossipmesh_get_duration_seconds_count 1\n",
		`gossipmesh_put_duration_seconds_bucket{le="+Inf"} 1`,
		"# TYPE gossipmesh_sync_session_duration_seconds histogram\n",
		"# TYPE gossipmesh_propagation_delay_seconds histogram\n",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grepLines(metrics, "duration_seconds"))
		}
	}
	d.stop()
	var started, rebuilt bool
	for _, line := range strings.Split(strings.TrimSpace(d.stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
		switch rec["msg"] {
		case "meshd started":
			started = true
		case "merkle trees rebuilt from store":
			_, rebuilt = rec["took_seconds"].(float64)
		}
	}
	if !started || !rebuilt {
		t.Fatalf("JSON logs lack the start line or the rebuild time in seconds (took_seconds):\n%s", d.stderr.String())
	}
}
