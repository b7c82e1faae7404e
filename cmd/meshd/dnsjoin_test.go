package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeResolver answers LookupIPAddr from a table the test changes.
type fakeResolver struct {
	mu    sync.Mutex
	ips   map[string][]string
	fail  bool
	asked []string
}

func (r *fakeResolver) set(host string, ips ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ips[host] = ips
}

func (r *fakeResolver) setFail(fail bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = fail
}

func (r *fakeResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("lookup without a deadline")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, host)
	if r.fail {
		return nil, &net.DNSError{Err: "server misbehaving", Name: host, IsTemporary: true}
	}
	var out []net.IPAddr
	for _, s := range r.ips[host] {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

// fakeJoins records the joins a dnsJoin has running.
type fakeJoins struct {
	mu      sync.Mutex
	running map[string]int
	starts  int
}

func (f *fakeJoins) start(ctx context.Context, base string) {
	f.mu.Lock()
	f.running[base]++
	f.starts++
	f.mu.Unlock()
	<-ctx.Done()
	f.mu.Lock()
	f.running[base]--
	if f.running[base] == 0 {
		delete(f.running, base)
	}
	f.mu.Unlock()
}

func (f *fakeJoins) bases() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for b, n := range f.running {
		for range n {
			out = append(out, b)
		}
	}
	slices.Sort(out)
	return out
}

func waitJoins(t *testing.T, f *fakeJoins, want ...string) {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(f.bases(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("running joins %v, want %v", f.bases(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startDNSJoin(t *testing.T, r *fakeResolver, f *fakeJoins) {
	t.Helper()
	j := &dnsJoin{
		hostport: "tasks.meshd:7700", resolver: r, every: 20 * time.Millisecond,
		start: f.start, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); j.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if left := f.bases(); len(left) != 0 {
			t.Errorf("joins still running after run returned: %v", left)
		}
	})
}

func TestDNSJoinFollowsTheName(t *testing.T) {
	r := &fakeResolver{ips: map[string][]string{}}
	f := &fakeJoins{running: map[string]int{}}
	r.set("tasks.meshd", "10.0.1.2", "10.0.1.3", "fd00::4", "10.0.1.2")
	startDNSJoin(t, r, f)
	waitJoins(t, f, "http://10.0.1.2:7700", "http://10.0.1.3:7700", "http://[fd00::4]:7700")

	// A new task appears, another is gone.
	r.set("tasks.meshd", "10.0.1.3", "fd00::4", "10.0.1.9")
	waitJoins(t, f, "http://10.0.1.3:7700", "http://[fd00::4]:7700", "http://10.0.1.9:7700")

	// A failed lookup keeps what is known; the next answer applies again.
	r.setFail(true)
	r.set("tasks.meshd", "10.0.1.9")
	lookups(r) // count from here: at least two failed lookups
	deadline := time.Now().Add(5 * time.Second)
	for failed := 0; failed < 2; failed += lookups(r) {
		if time.Now().After(deadline) {
			t.Fatalf("%d failed lookups in 5 s, want 2", failed)
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
	waitJoins(t, f, "http://10.0.1.3:7700", "http://[fd00::4]:7700", "http://10.0.1.9:7700")
	r.setFail(false)
	waitJoins(t, f, "http://10.0.1.9:7700")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.starts != 4 {
		t.Errorf("%d joins started, want 4 (one per address ever seen)", f.starts)
	}
}

// lookups counts the lookups since the last call.
func lookups(r *fakeResolver) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.asked)
	r.asked = nil
	return n
}

func TestDNSJoinLookupError(t *testing.T) {
	j := &dnsJoin{hostport: "tasks.meshd:7700", resolver: &fakeResolver{ips: map[string][]string{}}}
	if _, err := j.resolve(context.Background()); !errors.Is(err, errDNSJoin) {
		t.Errorf("resolve of an unknown name: err %v, want errDNSJoin", err)
	}
}

func TestJoinFlagDNS(t *testing.T) {
	for _, bad := range []string{"dns://tasks.meshd", "dns://:7700", "dns://tasks.meshd:0", "dns://tasks.meshd:7700/x", "dns://tasks.meshd:http"} {
		if _, err := loadSettings([]string{"--join", bad}, nil); !errors.Is(err, errUsage) {
			t.Errorf("--join %q: err %v, want errUsage", bad, err)
		}
	}
	s, err := loadSettings([]string{"--join", "dns://tasks.meshd:7700", "--join", "http://node1:7700"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := parseJoin(s.Join)
	want := []joinTarget{{dns: "tasks.meshd:7700"}, {base: "http://node1:7700"}}
	if !slices.Equal(got, want) {
		t.Errorf("joins = %+v, want %+v", got, want)
	}
}

func TestAnnounceFlag(t *testing.T) {
	if _, err := loadSettings([]string{"--announce", "10.0.0.1:7800"}, nil); !errors.Is(err, errUsage) {
		t.Errorf("--announce without a multiaddr: err %v, want errUsage", err)
	}
	s, err := loadSettings([]string{"--announce", "/dns4/meshd-0.meshd/tcp/7800", "--announce", "/ip4/203.0.113.7/tcp/7800"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := s.nodeConfig(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.AnnounceAddrs) != 2 || cfg.AnnounceAddrs[1].String() != "/ip4/203.0.113.7/tcp/7800" {
		t.Errorf("AnnounceAddrs = %v", cfg.AnnounceAddrs)
	}
}
