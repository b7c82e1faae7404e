package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunServesAndStopsOnSignal runs the daemon in process on a memory node
// and checks the startup lines, a served API and a clean stop.
func TestRunServesAndStopsOnSignal(t *testing.T) {
	pr, pw := io.Pipe()
	sigs := make(chan os.Signal, 2)
	code := make(chan int, 1)
	go func() {
		code <- run([]string{"--memory", "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--mdns=false", "--log-level", "warn"}, pw, io.Discard, sigs)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var lines []string
	api := ""
	for api == "" && sc.Scan() {
		lines = append(lines, sc.Text())
		if a, ok := strings.CutPrefix(sc.Text(), "meshd: API on "); ok {
			api = a
		}
	}
	go io.Copy(io.Discard, pr)
	if api == "" || !strings.HasPrefix(lines[0], "meshd: peer ID 12D3KooW") || !strings.Contains(strings.Join(lines, "\n"), "meshd: listening on /ip4/127.0.0.1/tcp/") {
		t.Fatalf("startup output:\n%s", strings.Join(lines, "\n"))
	}
	req, _ := http.NewRequest("PUT", api+"/v1/kv/k", strings.NewReader("v"))
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 204 {
		t.Fatalf("PUT: %v %v", res, err)
	}
	res.Body.Close()
	sigs <- syscall.SIGTERM
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit %d after SIGTERM", c)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("meshd did not stop after SIGTERM")
	}
}

func TestRunBadFlagsExit2(t *testing.T) {
	var stderr strings.Builder
	if c := run([]string{"--partitions", "-1"}, io.Discard, &stderr, nil); c != 2 {
		t.Fatalf("exit %d, want 2", c)
	}
	if got := stderr.String(); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "meshd: --partitions") {
		t.Fatalf("stderr %q", got)
	}
}

func TestRunBusyAPIPort(t *testing.T) {
	var stderr strings.Builder
	sigs := make(chan os.Signal, 1)
	// Occupy a port with a first listener.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := run([]string{"--memory", "--api", l.Addr().String(), "--mdns=false"}, io.Discard, &stderr, sigs)
	if c != 1 || !strings.Contains(stderr.String(), "cannot listen on --api") {
		t.Fatalf("exit %d, stderr %q", c, stderr.String())
	}
}

func TestSecondSignalForcesExit(t *testing.T) {
	forced := make(chan int, 1)
	forceExit = func(code int) { forced <- code }
	t.Cleanup(func() { forceExit = os.Exit })
	sigs := make(chan os.Signal, 2)
	// Both signals queued up front: the first starts the shutdown, the
	// second is taken by the watcher started before the shutdown begins.
	sigs <- syscall.SIGINT
	sigs <- syscall.SIGINT
	go run([]string{"--memory", "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--mdns=false", "--log-level", "error"}, io.Discard, io.Discard, sigs)
	select {
	case code := <-forced:
		if code != 1 {
			t.Fatalf("forced exit %d, want 1", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("second signal did not force the exit")
	}
}
