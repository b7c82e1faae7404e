package main

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// A flood of requests that announce a 10 GB body and send a few bytes is
// answered 413 at once, without waiting for the body, and honest writes go
// on meanwhile; nothing acknowledged is lost.
func TestE2EOversizedBodiesAreRefusedAtOnce(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	u, err := url.Parse(d.api)
	if err != nil {
		t.Fatal(err)
	}
	const attackers = 300
	var wg sync.WaitGroup
	statuses := make([]string, attackers)
	for i := range attackers {
		wg.Go(func() {
			statuses[i] = announceHugeBody(u.Host, i)
		})
	}
	var latencies []time.Duration
	for i := range 50 {
		start := time.Now()
		if err := d.put(fmt.Sprintf("honest-%d", i), "v"); err != nil {
			t.Fatalf("honest put during the attack: %v", err)
		}
		latencies = append(latencies, time.Since(start))
	}
	wg.Wait()
	for i, st := range statuses {
		if !strings.HasPrefix(st, "HTTP/1.1 413") {
			t.Fatalf("attacker %d got %q, want 413 at once", i, st)
		}
	}
	slices.Sort(latencies)
	t.Logf("honest put latency during the attack: p50 %v, p99 %v", latencies[len(latencies)/2], latencies[len(latencies)*99/100])
	for i := range 50 {
		if v, ok := d.get(fmt.Sprintf("honest-%d", i)); !ok || v != "v" {
			t.Fatalf("acknowledged honest-%d lost: %q %v", i, v, ok)
		}
	}
}

// announceHugeBody sends a PUT that declares 10 GB and sends 3 bytes, and
// returns the status line it gets within 5 s (or what went wrong).
func announceHugeBody(addr string, i int) string {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "PUT /v1/kv/flood-%d HTTP/1.1\r\nHost: %s\r\nContent-Length: 10000000000\r\n\r\nabc", i, addr)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "read: " + err.Error()
	}
	return strings.TrimSpace(line)
}
