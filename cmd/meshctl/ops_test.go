package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/gossipmesh/gossipmesh/node/httpapi"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Binary keys and values round-trip through a shell with --encoding.
func TestEncodingRoundTrip(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	key, val := []byte{0xff, 0x00, 'k'}, []byte{0x80, 0x0a, 0x00}
	if err := h.fake.Put(t.Context(), key, val); err != nil {
		t.Fatal(err)
	}
	for _, enc := range []string{"hex", "base64"} {
		listed := strings.TrimSuffix(h.ok("--encoding", enc, "keys"), "\n")
		got := h.ok("--encoding", enc, "get", listed)
		if want := codec(enc).encode(val) + "\n"; got != want {
			t.Fatalf("%s: get %q = %q, want %q", enc, listed, got, want)
		}
	}
	// raw keys are printed as their bytes, not replaced by U+FFFD.
	if out := h.ok("keys"); out != string(key)+"\n" {
		t.Fatalf("raw keys = %q", out)
	}
	h.ok("--encoding", "hex", "put", "6869", hex.EncodeToString([]byte{0xde, 0xad}))
	if v, _ := h.fake.Get(t.Context(), []byte("hi")); !bytes.Equal(v, []byte{0xde, 0xad}) {
		t.Fatalf("hex put stored %x", v)
	}
	if r := h.ctlIn(t.Context(), "3q0=\n", "--encoding", "base64", "put", "Yg=="); r.code != 0 {
		t.Fatalf("base64 value from stdin: %+v", r)
	}
	h.ok("--encoding", "hex", "sadd", "73", "00ff")
	if out := h.ok("--encoding", "hex", "smembers", "73"); out != "00ff\n" {
		t.Fatalf("hex smembers = %q", out)
	}
	h.fails(2, `KEY "zz" is not valid hex`, "--encoding", "hex", "get", "zz")
	h.fails(2, "--encoding must be raw, hex or base64", "--encoding", "rot13", "keys")
}

func TestKeysLocal(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	h.ok("put", "a", "1")
	var all, local struct {
		Keys  []string
		Local bool
	}
	json.Unmarshal([]byte(h.ok("--json", "keys")), &all)
	json.Unmarshal([]byte(h.ok("--json", "keys", "--local")), &local)
	if all.Local || !local.Local || len(all.Keys) != 1 || len(local.Keys) != 1 {
		t.Fatalf("keys %+v, --local %+v", all, local)
	}
	if out := h.ok("keys", "--help"); !strings.Contains(out, "--local") || !strings.Contains(out, "whole mesh") {
		t.Fatalf("keys --help does not say what is listed:\n%s", out)
	}
}

func TestClearErrors(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	h.ok("incr", "hits")
	h.fails(1, `key holds another kind of value: "hits" is a counter`, "get", "hits")
	if r := h.ctl("get", "hits"); strings.Contains(r.stderr, "node:") || strings.Contains(r.stderr, "client:") {
		t.Fatalf("package prefix leaks: %q", r.stderr)
	}
	h.fails(2, "the key is empty", "get", "")
	h.fails(2, "the key is empty", "put", "", "v")

	// Another server's 404 is not a missing key.
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	var out, errb bytes.Buffer
	addr := strings.TrimPrefix(other.URL, "http://")
	code := run(t.Context(), []string{"--api", addr, "get", "k"}, nil, &out, &errb)
	if code != 1 || strings.Contains(errb.String(), "not found") || !strings.Contains(errb.String(), "not as meshd does") {
		t.Fatalf("404 from another server: exit %d, %q", code, errb.String())
	}
}

// A bare host means meshd's port 7700, never port 80.
func TestAPIDefaultPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:7700")
	if err != nil {
		t.Skipf("port 7700 busy: %v", err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: httpapi.NewHandler(newHarness(t, httpapi.Options{}).fake, httpapi.Options{})}}
	srv.Start()
	defer srv.Close()
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"--api", "127.0.0.1", "id"}, nil, &out, &errb); code != 0 {
		t.Fatalf("--api 127.0.0.1: exit %d, %s", code, errb.String())
	}
}

func TestJSONErrorsAndKeygen(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	for _, c := range []struct {
		args  []string
		code  int
		ecode string
	}{
		{[]string{"--json", "get", "absent"}, 1, "not_found"},
		{[]string{"--json", "frobnicate"}, 2, "usage"},
		{[]string{"--json", "get", ""}, 2, "usage"},
	} {
		r := h.ctl(c.args...)
		var e struct{ Error, Code string }
		if r.code != c.code || json.Unmarshal([]byte(r.stderr), &e) != nil || e.Code != c.ecode || e.Error == "" || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", c.args, r.code, r.stderr)
		}
	}
	var key struct {
		Kind   string `json:"kind"`
		KeyHex string `json:"key_hex"`
		File   string `json:"file"`
	}
	json.Unmarshal([]byte(h.ok("--json", "keygen")), &key)
	if key.Kind != "swarm" || len(key.KeyHex) != 64 || !strings.HasPrefix(key.File, "/key/swarm/psk/1.0.0/\n/base16/\n"+key.KeyHex) {
		t.Fatalf("keygen --json = %+v", key)
	}
}

func TestCompletion(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	for shell, want := range map[string]string{"bash": "__start_meshctl", "zsh": "#compdef meshctl", "fish": "complete -c meshctl"} {
		if out := h.ok("completion", shell); !strings.Contains(out, want) {
			t.Errorf("completion %s lacks %q", shell, want)
		}
	}
}

func TestMembersJoinLeave(t *testing.T) {
	left := false
	h := newHarness(t, httpapi.Options{Leave: func(_ context.Context) error { left = true; return nil }})
	other, _ := peer.Decode("12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK")
	h.fake.MemberList = []node.Member{{ID: other, State: node.MemberLeft}}
	out := h.ok("members")
	for _, want := range []string{"PEER", "STATE", h.fake.PeerID.String(), "alive (self)", other.String(), "left", "/ip4/127.0.0.1/tcp/4001"} {
		if !strings.Contains(out, want) {
			t.Errorf("members lacks %q:\n%s", want, out)
		}
	}
	addr := "/ip4/10.1.2.3/tcp/4001/p2p/" + other.String()
	if out := h.ok("join", addr); out != "joined "+other.String()+"\n" {
		t.Fatalf("join = %q", out)
	}
	h.fails(1, "no /p2p/PEERID", "join", "/ip4/10.1.2.3/tcp/4001")
	h.fake.ConnectErr = errors.New("dial refused")
	h.fails(1, "cannot reach the peer", "join", addr)
	h.ok("leave")
	if !left {
		t.Fatal("leave did not reach the daemon")
	}
	if got := ranges([]uint32{0, 1, 2, 5, 7, 8}); got != "0-2,5,7-8" {
		t.Fatalf("ranges = %q", got)
	}
}

func TestWaitReady(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	h.ok("wait", "--ready", "--timeout", "2s")
	h.fake.NotReady = node.ErrNotReady
	h.fails(1, "meshd not ready after 300ms: not ready", "wait", "--ready", "--timeout", "300ms")
	h.fails(2, "usage: meshctl wait --ready", "wait")

	// A wrong token fails at once: waiting would not help.
	tok := newHarness(t, httpapi.Options{Token: "t"})
	start := time.Now()
	tok.fails(1, "missing bearer token", "wait", "--ready", "--timeout", "20s")
	if time.Since(start) > 5*time.Second {
		t.Fatalf("wait --ready with a wrong token took %v", time.Since(start))
	}
}

// An unreachable bare host names the port tried.
func TestUnreachableNamesThePort(t *testing.T) {
	var out, errb bytes.Buffer
	run(t.Context(), []string{"--api", "localhost", "--connect-timeout", "1s", "get", "k"}, nil, &out, &errb)
	if !strings.Contains(errb.String(), "cannot reach") {
		t.Skipf("something answers on localhost:7700: %q", errb.String())
	}
	if !strings.Contains(errb.String(), "localhost:7700") {
		t.Fatalf("stderr %q does not name localhost:7700", errb.String())
	}
}

// watch --from carries on after an event an earlier watch printed.
func TestWatchFrom(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	var out syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"--api", h.api, "--json", "watch"}, nil, &out, &bytes.Buffer{}) }()
	waitUntil(t, "watch registered", func() bool { return h.fake.Watchers() == 1 })
	h.ok("put", "a", "1")
	waitUntil(t, "first event", func() bool { return strings.Count(out.String(), "\n") == 1 })
	cancel()
	<-done
	var ev struct{ ID string }
	if err := json.Unmarshal([]byte(out.String()), &ev); err != nil || ev.ID == "" {
		t.Fatalf("event %q: %v", out.String(), err)
	}
	h.ok("put", "b", "2") // while nobody watches
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	var out2 syncBuffer
	go func() { run(ctx2, []string{"--api", h.api, "watch", "--from", ev.ID}, nil, &out2, &bytes.Buffer{}) }()
	waitUntil(t, "the missed change", func() bool { return out2.String() == "put\tb\tlocal\t2\n" })
}

func TestVersionNamesClientAndServer(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	out := h.ok("version")
	if !strings.HasPrefix(out, "meshctl ") || !strings.Contains(out, "\nmeshd ") {
		t.Fatalf("version = %q, want the meshctl and meshd builds", out)
	}
	var v struct {
		Meshctl struct {
			Version string `json:"version"`
		} `json:"meshctl"`
		Server string `json:"server"`
	}
	if err := json.Unmarshal([]byte(h.ok("--json", "version")), &v); err != nil || v.Meshctl.Version == "" || v.Server == "" {
		t.Fatalf("version --json: %+v, %v", v, err)
	}
}

func TestHealth(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	if out := h.ok("health"); out != "ok\n" {
		t.Fatalf("health = %q", out)
	}
}
