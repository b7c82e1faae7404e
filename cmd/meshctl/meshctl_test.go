package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/gossipmesh/gossipmesh/node/backup"
	"github.com/gossipmesh/gossipmesh/node/httpapi"
	"github.com/gossipmesh/gossipmesh/node/httpapi/httpapitest"
)

type harness struct {
	t    *testing.T
	fake *httpapitest.Fake
	srv  *httptest.Server
	api  string
}

func newHarness(t *testing.T, opts httpapi.Options) *harness {
	fake := httpapitest.NewFake()
	opts.Logger = slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(httpapi.NewHandler(fake, opts))
	t.Cleanup(srv.Close)
	return &harness{t: t, fake: fake, srv: srv, api: strings.TrimPrefix(srv.URL, "http://")}
}

type result struct {
	code           int
	stdout, stderr string
}

// ctl runs meshctl against the harness server with stdin from in.
func (h *harness) ctlIn(ctx context.Context, in string, args ...string) result {
	h.t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, append([]string{"--api", h.api}, args...), strings.NewReader(in), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func (h *harness) ctl(args ...string) result {
	h.t.Helper()
	return h.ctlIn(h.t.Context(), "", args...)
}

func (h *harness) ok(args ...string) string {
	h.t.Helper()
	r := h.ctl(args...)
	if r.code != 0 || r.stderr != "" {
		h.t.Fatalf("meshctl %v: exit %d, stderr %q", args, r.code, r.stderr)
	}
	return r.stdout
}

// fails checks exit code and that stderr is exactly one line containing want.
func (h *harness) fails(code int, want string, args ...string) {
	h.t.Helper()
	r := h.ctl(args...)
	if r.code != code {
		h.t.Fatalf("meshctl %v: exit %d, want %d (stderr %q)", args, r.code, code, r.stderr)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "meshctl: ") || !strings.Contains(r.stderr, want) {
		h.t.Fatalf("meshctl %v: stderr %q, want one line with %q", args, r.stderr, want)
	}
}

func TestPutGetDel(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	if out := h.ok("put", "greeting", "hello world"); out != "" {
		t.Fatalf("put printed %q", out)
	}
	if out := h.ok("get", "greeting"); out != "hello world" {
		t.Fatalf("get = %q", out)
	}
	var kv httpapi.KVResponse
	if err := json.Unmarshal([]byte(h.ok("--json", "get", "greeting")), &kv); err != nil || *kv.Value != "hello world" {
		t.Fatalf("get --json: %+v, %v", kv, err)
	}
	if r := h.ctlIn(t.Context(), "from\nstdin", "put", "a/b c"); r.code != 0 {
		t.Fatalf("put from stdin: %+v", r)
	}
	if out := h.ok("get", "a/b c"); out != "from\nstdin" {
		t.Fatalf("get of key with slash and space = %q", out)
	}
	h.ok("del", "greeting")
	h.fails(1, `key "greeting" not found`, "get", "greeting")
	if out := h.ok("--json", "del", "a/b c"); strings.TrimSpace(out) != `{"ok":true}` {
		t.Fatalf("del --json = %q", out)
	}
}

func TestKeysCounterSet(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	h.ok("put", "app/x", "1")
	h.ok("put", "app/y", "2")
	h.ok("put", "other", "3")
	if out := h.ok("keys", "--prefix", "app/"); out != "app/x\napp/y\n" {
		t.Fatalf("keys = %q", out)
	}
	if out := h.ok("incr", "hits"); out != "1\n" {
		t.Fatalf("incr = %q", out)
	}
	if out := h.ok("incr", "hits", "41"); out != "42\n" {
		t.Fatalf("incr 41 = %q", out)
	}
	if out := h.ok("incr", "hits", "-2"); out != "40\n" {
		t.Fatalf("incr -2 = %q", out)
	}
	if out := h.ok("counter", "hits"); out != "40\n" {
		t.Fatalf("counter = %q", out)
	}
	if out := h.ok("--json", "counter", "hits"); strings.TrimSpace(out) != `{"key":"hits","value":40}` {
		t.Fatalf("counter --json = %q", out)
	}
	h.ok("sadd", "tags", "red")
	h.ok("sadd", "tags", "blue")
	h.ok("srem", "tags", "red")
	h.ok("sadd", "tags", "green")
	if out := h.ok("smembers", "tags"); out != "blue\ngreen\n" {
		t.Fatalf("smembers = %q", out)
	}
	h.fails(1, "another kind", "get", "hits")
	h.fails(2, "integer", "incr", "hits", "many")
}

func TestInfoCommands(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	id := h.fake.PeerID.String()
	if out := h.ok("id"); !strings.HasPrefix(out, id+"\n/ip4/127.0.0.1/tcp/4001/p2p/"+id) {
		t.Fatalf("id = %q", out)
	}
	if out := h.ok("peers"); out != "" {
		t.Fatalf("peers with none = %q", out)
	}
	h.ok("put", "k", "v")
	out := h.ok("status")
	for _, want := range []string{"peer   " + id, "keys   1", "PARTITION", "PEERS AGREEING"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	var st httpapi.StatusResponse
	if err := json.Unmarshal([]byte(h.ok("--json", "status")), &st); err != nil || st.Keys != 1 {
		t.Fatalf("status --json: %+v, %v", st, err)
	}
}

func TestStatusShowsTheStoreQuota(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	out := h.ok("status")
	if !strings.Contains(out, "store full  no\n") || strings.Contains(out, "max store bytes") {
		t.Fatalf("status of a node with room and no quota:\n%s", out)
	}
	h.fake.SetStore(node.Status{StoreFull: true, StoreFullReason: node.FullQuota, StoreBytes: 1048700, MaxStoreBytes: 1048576, AnnouncedFull: true})
	out = h.ok("status")
	for _, want := range []string{"store bytes      1048700\n", "max store bytes  1048576\n", "store full       yes (quota), announced to placement\n", "peer   "} {
		if !strings.Contains(out, want) {
			t.Errorf("status at the quota lacks %q:\n%s", want, out)
		}
	}
	h.fake.SetStore(node.Status{StoreFull: true, StoreFullReason: node.FullDiskFloor, FreeBytes: 1000})
	if out := h.ok("status"); !strings.Contains(out, "store full  yes (disk floor)\n") {
		t.Errorf("status below the disk floor:\n%s", out)
	}
	var st httpapi.StatusResponse
	h.fake.SetStore(node.Status{StoreFull: true, StoreFullReason: node.FullQuota, StoreBytes: 10, MaxStoreBytes: 9})
	if err := json.Unmarshal([]byte(h.ok("--json", "status")), &st); err != nil || st.StoreFullReason != "quota" || st.StoreBytes != 10 || st.MaxStoreBytes != 9 || !st.StoreFull {
		t.Fatalf("status --json at the quota: %+v, %v", st, err)
	}
}

func TestUsageErrors(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	h.fails(2, "usage: meshctl get KEY", "get")
	h.fails(2, "unknown command", "frobnicate")
	h.fails(2, "unknown flag", "get", "--bogus", "k")
	h.fails(2, "--api must be", "--api", "http://", "id")
}

func TestUnreachable(t *testing.T) {
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"--api", addr, "get", "k"}, nil, &out, &errb)
	want := "meshctl: cannot reach meshd at " + addr + ": connection refused\n"
	if code != 1 || errb.String() != want {
		t.Fatalf("exit %d, stderr %q; want 1, %q", code, errb.String(), want)
	}
}

func TestToken(t *testing.T) {
	h := newHarness(t, httpapi.Options{Token: "tok"})
	h.fails(1, "missing bearer token", "id")
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	os.WriteFile(good, []byte("tok\n"), 0o600)
	os.WriteFile(bad, []byte("nope"), 0o600)
	h.fails(1, "wrong token", "--token-file", bad, "id")
	h.ok("--token-file", good, "id")
	h.fails(1, "--token-file", "--token-file", filepath.Join(dir, "absent"), "id")
}

func TestWatch(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--api", h.api, "watch", "app/"}, nil, &out, &bytes.Buffer{})
	}()
	waitUntil(t, "the watch registered", func() bool { return h.fake.Watchers() > 0 })
	h.ok("put", "app/a", "1")
	h.ok("put", "skip", "x")
	h.ok("del", "app/a")
	h.ok("incr", "app/n")
	want := "put\tapp/a\tlocal\t1\ndel\tapp/a\tlocal\ncounter\tapp/n\tlocal\t1\n"
	waitUntil(t, fmt.Sprintf("watch output %q", want), func() bool { return out.String() == want })
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("watch exit %d after interrupt", code)
	}
}

// When meshd ends the watch (a restart), watch reconnects and carries on;
// with --once it exits.
func TestWatchReconnects(t *testing.T) {
	h := newHarness(t, httpapi.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"--api", h.api, "watch"}, nil, &out, &errb) }()
	waitUntil(t, "watch registered", func() bool { return h.fake.Watchers() == 1 })
	h.ok("put", "a", "1")
	waitUntil(t, "first event", func() bool { return out.String() == "put\ta\tlocal\t1\n" })
	h.fake.CloseWatches()
	waitUntil(t, "reconnected", func() bool { return h.fake.Watchers() == 1 && strings.Contains(errb.String(), "reconnecting") })
	h.ok("put", "b", "2")
	waitUntil(t, "event after reconnect", func() bool { return strings.HasSuffix(out.String(), "put\tb\tlocal\t2\n") })
	if !strings.Contains(errb.String(), "changes may have been missed") {
		t.Errorf("no note of the reset on stderr: %q", errb.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("watch exit %d after interrupt", code)
	}

	h = newHarness(t, httpapi.Options{}) // a fresh backend watch, begun by this client
	var errOnce bytes.Buffer
	doneOnce := make(chan int, 1)
	go func() {
		doneOnce <- run(t.Context(), []string{"--api", h.api, "watch", "--once"}, nil, &bytes.Buffer{}, &errOnce)
	}()
	waitUntil(t, "watch --once registered", func() bool { return h.fake.Watchers() == 1 })
	h.fake.CloseWatches()
	if code := <-doneOnce; code != 1 || !strings.Contains(errOnce.String(), "meshd ended the watch") {
		t.Fatalf("--once: exit %d, stderr %q", code, errOnce.String())
	}
}

// waitUntil polls cond until it holds or 5 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // poll interval
	}
}

func TestBackupRestore(t *testing.T) {
	src := newHarness(t, httpapi.Options{})
	src.ok("put", "a", "1")
	src.ok("incr", "c", "5")
	src.ok("sadd", "s", "m")
	file := filepath.Join(t.TempDir(), "mesh.gmbk")
	if out := src.ok("backup", file); out != "backed up 3 records ("+sizeOf(t, file)+" bytes) to "+file+"\n" {
		t.Fatalf("backup printed %q", out)
	}
	if n, err := verifyFile(file); err != nil || n != 3 {
		t.Fatalf("backup file: %d records, %v", n, err)
	}

	dst := newHarness(t, httpapi.Options{})
	for range 2 {
		if out := dst.ok("restore", file); out != "restored 3 records from "+file+"\n" {
			t.Fatalf("restore printed %q", out)
		}
	}
	if out := dst.ok("counter", "c"); out != "5\n" {
		t.Fatalf("restored counter = %q", out)
	}

	data, _ := os.ReadFile(file)
	trunc := filepath.Join(t.TempDir(), "trunc.gmbk")
	os.WriteFile(trunc, data[:len(data)-1], 0o600)
	fresh := newHarness(t, httpapi.Options{})
	fresh.fails(1, "truncated", "restore", trunc)
	fresh.fails(1, "no such file", "restore", filepath.Join(t.TempDir(), "absent"))
	if out := fresh.ok("keys"); out != "" {
		t.Fatalf("refused restore left keys %q", out)
	}

	// A failed backup leaves no file behind.
	src.fake.Err = os.ErrPermission
	failed := filepath.Join(t.TempDir(), "failed.gmbk")
	src.fails(1, "", "backup", failed)
	if entries, _ := os.ReadDir(filepath.Dir(failed)); len(entries) != 0 {
		t.Fatalf("failed backup left %v", entries)
	}
}

func sizeOf(t *testing.T, path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(fi.Size(), 10)
}

func verifyFile(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return backup.Verify(f)
}

func TestEnvDefaults(t *testing.T) {
	h := newHarness(t, httpapi.Options{Token: "tok"})
	tok := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(tok, []byte("tok"), 0o600)
	t.Setenv("MESHCTL_API", h.api)
	t.Setenv("MESHCTL_TOKEN_FILE", tok)
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"id"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}
