package client_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gossipmesh/gossipmesh/node/httpapi"
	"github.com/gossipmesh/gossipmesh/node/httpapi/client"
	"github.com/gossipmesh/gossipmesh/node/httpapi/httpapitest"
)

func newClient(t *testing.T, opts httpapi.Options) (*client.Client, *httpapitest.Fake, *httptest.Server) {
	t.Helper()
	fake := httpapitest.NewFake()
	srv := httptest.NewServer(httpapi.NewHandler(fake, opts))
	t.Cleanup(srv.Close)
	c, err := client.New(strings.TrimPrefix(srv.URL, "http://"), client.Options{Token: opts.Token})
	if err != nil {
		t.Fatal(err)
	}
	return c, fake, srv
}

func TestAddresses(t *testing.T) {
	for _, bad := range []string{"", "http://", "ftp://h:1", "h:1/path", "http://h:1/v1"} {
		if _, err := client.New(bad, client.Options{}); !errors.Is(err, client.ErrInvalidAddr) {
			t.Errorf("New(%q): %v, want ErrInvalidAddr", bad, err)
		}
	}
	// A bare host is meshd's port, not 80: reach a server there by name.
	l, err := net.Listen("tcp", "127.0.0.1:"+client.DefaultPort)
	if err != nil {
		t.Skipf("port %s busy: %v", client.DefaultPort, err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: httpapi.NewHandler(httpapitest.NewFake(), httpapi.Options{})}}
	srv.Start()
	defer srv.Close()
	for _, addr := range []string{"127.0.0.1", "http://127.0.0.1:" + client.DefaultPort} {
		c, _ := client.New(addr, client.Options{})
		if _, err := c.ID(t.Context()); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	c, _, _ := newClient(t, httpapi.Options{})
	ctx := t.Context()
	keys := [][]byte{{0xff, 0x00, '/', '.'}, []byte(".."), []byte("a//b"), []byte("ü")}
	for _, k := range keys {
		if err := c.Put(ctx, k, append([]byte{0xfe}, k...)); err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
		if err := c.SAdd(ctx, append([]byte("s"), k...), k); err != nil {
			t.Fatal(err)
		}
	}
	got, local, err := c.Keys(ctx, client.KeysOptions{})
	if err != nil || len(got) != 2*len(keys) || local {
		t.Fatalf("keys %q, local %v, %v", got, local, err)
	}
	for _, k := range keys {
		if !slices.ContainsFunc(got, func(g []byte) bool { return bytes.Equal(g, k) }) {
			t.Errorf("key %q not listed as sent", k)
		}
		v, err := c.Get(ctx, k)
		if err != nil || !bytes.Equal(v, append([]byte{0xfe}, k...)) {
			t.Errorf("get %q = %q, %v", k, v, err)
		}
		ms, err := c.SMembers(ctx, append([]byte("s"), k...))
		if err != nil || len(ms) != 1 || !bytes.Equal(ms[0], k) {
			t.Errorf("members of s%q = %q, %v", k, ms, err)
		}
	}
}

func TestErrors(t *testing.T) {
	c, fake, _ := newClient(t, httpapi.Options{})
	ctx := t.Context()
	if _, err := c.Get(ctx, []byte("none")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("absent: %v", err)
	}
	if _, err := c.Get(ctx, nil); !errors.Is(err, client.ErrInvalidKey) || !strings.Contains(err.Error(), "empty key") {
		t.Fatalf("empty key: %v", err)
	}
	fake.MaxValueBytes = 4
	if err := c.Put(ctx, []byte("k"), []byte("12345")); !errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}

	// A server that is not meshd: its 404 is no "key not found".
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	oc, _ := client.New(other.URL, client.Options{})
	_, err := oc.Get(ctx, []byte("k"))
	if errors.Is(err, client.ErrNotFound) || !errors.Is(err, client.ErrNotMeshd) || !strings.Contains(err.Error(), "not as meshd") {
		t.Fatalf("404 from another server: %v", err)
	}

	tc, _, _ := newClient(t, httpapi.Options{Token: "x"})
	bad, _ := client.New(strings.TrimPrefix(tcURL(t, tc), "http://"), client.Options{Token: "y"})
	if _, err := bad.ID(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := tc.ID(ctx); err != nil {
		t.Fatal(err)
	}
}

func tcURL(t *testing.T, c *client.Client) string { return c.Addr() }

func TestReady(t *testing.T) {
	c, fake, _ := newClient(t, httpapi.Options{})
	if r, err := c.Ready(t.Context()); err != nil || !r.Ready {
		t.Fatalf("ready: %+v, %v", r, err)
	}
	fake.Err = errors.New("boom")
	if _, err := c.Ready(t.Context()); err == nil {
		t.Fatal("ready with a failing backend")
	}
	if err := c.Health(t.Context()); err != nil {
		t.Fatalf("health: %v", err)
	}
}

// Follow carries on across meshd ending the watch, resuming after the
// last event, and passes counter values.
func TestFollowResumes(t *testing.T) {
	c, fake, _ := newClient(t, httpapi.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var mu sync.Mutex
	var got []string
	retries := make(chan error, 8)
	done := make(chan error, 1)
	go func() {
		done <- c.Follow(ctx, client.WatchOptions{Prefix: []byte("f/")},
			client.FollowOptions{OnRetry: func(err error, _ time.Duration) { retries <- err }},
			func(ev client.Event) error {
				mu.Lock()
				defer mu.Unlock()
				if ev.Reset {
					got = append(got, "reset")
				} else {
					got = append(got, string(ev.Key))
				}
				return nil
			})
	}()
	waitFor(t, func() bool { return fake.Watchers() == 1 })
	c.Put(ctx, []byte("f/1"), []byte("x"))
	fake.CloseWatches() // as a node that closes: the stream ends
	if err := <-retries; !errors.Is(err, client.ErrWatchEnded) {
		t.Fatalf("retry after %v", err)
	}
	waitFor(t, func() bool { return fake.Watchers() == 1 })
	c.Put(ctx, []byte("f/2"), []byte("y"))
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow: %v", err)
	}
	// The backend watch restarted, so the resume is a reset, then live.
	if strings.Join(got, ",") != "f/1,reset,f/2" {
		t.Fatalf("events %v", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5 s")
		}
		time.Sleep(time.Millisecond) // poll interval
	}
}
