package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// End-to-end tests run the built meshd and meshctl binaries on loopback
// with temporary data directories. They are skipped with -short.

// The test binaries are built with a release version set by the linker,
// as a release build would be.
const (
	versionVar = "github.com/gossipmesh/gossipmesh/internal/version.Version"
	e2eVersion = "v0.0.0-e2e"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds meshd and meshctl once per test run.
func binaries(t *testing.T) (meshd, meshctl string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "meshd-e2e-bin-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir, "-ldflags", "-X "+versionVar+"="+e2eVersion,
			"github.com/gossipmesh/gossipmesh/cmd/meshd", "github.com/gossipmesh/gossipmesh/cmd/meshctl").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "meshd"), filepath.Join(binDir, "meshctl")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// daemon is one running meshd process.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	api    string // http://host:port
	addr   string // first listen multiaddr with /p2p/
	token  string // the join token printed at start, if one was
	stderr *lockedBuffer
	exited chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDaemon starts meshd on a data directory and waits for its API line.
// The mesh is open (--open) unless extra names a secret (--swarm-key,
// --join-token) or asks for meshd's own (privateMesh).
func startDaemon(t *testing.T, data string, extra ...string) *daemon {
	t.Helper()
	meshd, _ := binaries(t)
	args := []string{"--data", data, "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0",
		"--mdns=false", "--sync-interval", "300ms", "--log-level", "warn"}
	if open := openUnlessSecret(extra); open != nil {
		args = append(args, open...)
	}
	for _, a := range extra {
		if a != privateMesh {
			args = append(args, a)
		}
	}
	cmd := exec.Command(meshd, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() { d.stop() })

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(20 * time.Second)
	for d.api == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("meshd exited before serving; stderr:\n%s", d.stderr.String())
			}
			if tok, ok := strings.CutPrefix(line, "meshd: join token "); ok {
				d.token = tok
			}
			if a, ok := strings.CutPrefix(line, "meshd: API on "); ok {
				d.api = a
			}
			if a, ok := strings.CutPrefix(line, "meshd: listening on "); ok && d.addr == "" && strings.Contains(a, "/tcp/") {
				d.addr = a
			}
		case <-deadline:
			t.Fatalf("meshd did not print its API address; stderr:\n%s", d.stderr.String())
		}
	}
	go func() {
		for range lines { // keep the pipe drained
		}
	}()
	return d
}

// stop sends SIGTERM and waits; it reports whether the exit was clean.
func (d *daemon) stop() {
	select {
	case <-d.exited:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		if code := d.cmd.ProcessState.ExitCode(); code != 0 {
			d.t.Errorf("meshd exited %d after SIGTERM; stderr:\n%s", code, d.stderr.String())
		}
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		d.t.Errorf("meshd did not stop within 20s of SIGTERM")
	}
}

func (d *daemon) kill9() {
	d.cmd.Process.Kill()
	<-d.exited
}

func (d *daemon) ctl(args ...string) (string, error) {
	_, meshctl := binaries(d.t)
	var out, errb bytes.Buffer
	cmd := exec.Command(meshctl, append([]string{"--api", d.api}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("meshctl %v: %v: %s", args, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (d *daemon) put(key, value string) error {
	req, _ := http.NewRequest("PUT", d.api+"/v1/kv/"+key, strings.NewReader(value))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		return fmt.Errorf("PUT %s: %s", key, res.Status)
	}
	return nil
}

func (d *daemon) get(key string) (string, bool) {
	res, err := http.Get(d.api + "/v1/kv/" + key + "?raw=1")
	if err != nil {
		return "", false
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b), res.StatusCode == http.StatusOK
}

func (d *daemon) roots() []string {
	res, err := http.Get(d.api + "/v1/status")
	if err != nil {
		d.t.Fatal(err)
	}
	defer res.Body.Close()
	var st struct{ Partitions []struct{ Root string } }
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		d.t.Fatal(err)
	}
	out := make([]string, len(st.Partitions))
	for i, p := range st.Partitions {
		out[i] = p.Root
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

func TestE2EThreeNodesPutGet(t *testing.T) {
	a := startDaemon(t, t.TempDir())
	b := startDaemon(t, t.TempDir(), "--bootstrap", a.addr)
	c := startDaemon(t, t.TempDir(), "--bootstrap", a.addr)
	if _, err := a.ctl("put", "greeting", "hello mesh"); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]*daemon{"b": b, "c": c} {
		eventually(t, 20*time.Second, "greeting on "+name, func() bool {
			out, err := d.ctl("get", "greeting")
			return err == nil && out == "hello mesh"
		})
	}
	if _, err := c.ctl("incr", "hits", "2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "counter on a", func() bool {
		out, err := a.ctl("counter", "hits")
		return err == nil && out == "2\n"
	})
}

func TestE2EKill9DuringWrites(t *testing.T) {
	a := startDaemon(t, t.TempDir())
	b := startDaemon(t, t.TempDir(), "--bootstrap", a.addr)
	victimDir := t.TempDir()
	v := startDaemon(t, victimDir, "--bootstrap", a.addr)

	// Write to the victim until enough writes are acknowledged, then kill -9
	// it while the loop is still writing.
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprintf("k%05d", i)
			if v.put(k, "v"+k) != nil {
				return // the victim died mid-request: not acknowledged
			}
			mu.Lock()
			acked = append(acked, k)
			mu.Unlock()
		}
	}()
	eventually(t, 30*time.Second, "200 acknowledged writes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 200
	})
	v.kill9()
	close(stop)
	<-done
	mu.Lock()
	keys := append([]string(nil), acked...)
	mu.Unlock()
	t.Logf("%d writes acknowledged before kill -9", len(keys))

	v2 := startDaemon(t, victimDir, "--bootstrap", a.addr)
	for name, d := range map[string]*daemon{"restarted": v2, "a": a, "b": b} {
		eventually(t, 60*time.Second, "every acknowledged key on "+name, func() bool {
			for _, k := range keys {
				if val, ok := d.get(k); !ok || val != "v"+k {
					return false
				}
			}
			return true
		})
	}
}

func TestE2EBackupRestoreRoots(t *testing.T) {
	src := startDaemon(t, t.TempDir())
	for i := range 50 {
		if err := src.put(fmt.Sprintf("key/%d", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	src.ctl("incr", "n", "7")
	src.ctl("sadd", "s", "x")
	src.ctl("del", "key/3")
	file := filepath.Join(t.TempDir(), "src.gmbk")
	if _, err := src.ctl("backup", file); err != nil {
		t.Fatal(err)
	}

	dst := startDaemon(t, t.TempDir())
	for range 2 { // twice: restore is idempotent
		if _, err := dst.ctl("restore", file); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := strings.Join(dst.roots(), ","), strings.Join(src.roots(), ","); got != want {
		t.Fatalf("roots differ after restore:\n src %s\n dst %s", want, got)
	}
	if _, ok := dst.get("key/3"); ok {
		t.Error("deleted key came back after restore")
	}

	// A corrupted copy is refused and changes nothing.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	bad := filepath.Join(t.TempDir(), "bad.gmbk")
	os.WriteFile(bad, data, 0o600)
	fresh := startDaemon(t, t.TempDir())
	before := strings.Join(fresh.roots(), ",")
	if _, err := fresh.ctl("restore", bad); err == nil {
		t.Fatal("restore of a corrupted file succeeded")
	}
	if after := strings.Join(fresh.roots(), ","); after != before {
		t.Fatal("refused restore changed the node")
	}
}

func TestE2EBadFlagsAndConfig(t *testing.T) {
	meshd, _ := binaries(t)
	badConfig := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(badConfig, []byte("data = \"x\"\nbogus = 1\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-such-flag"}, "meshd: flag provided but not defined"},
		{[]string{"--config", badConfig}, "meshd: config " + badConfig + ": unknown key bogus"},
		{[]string{"--listen", "not-a-multiaddr"}, "meshd: --listen"},
		{[]string{"--memory", "--api", "127.0.0.1:0", "--mdns=false", "--log-level", "error", "--swarm-key", "/nonexistent/swarm.key"}, "meshd: node: invalid config"},
	} {
		var stderr bytes.Buffer
		cmd := exec.Command(meshd, tc.args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 {
			t.Errorf("meshd %v: %v, want exit 2", tc.args, err)
		}
		if got := stderr.String(); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, tc.want) {
			t.Errorf("meshd %v: stderr %q, want one line starting %q", tc.args, got, tc.want)
		}
	}
}

func writeSwarmKey(t *testing.T, seed byte) string {
	t.Helper()
	key := make([]byte, 32)
	for i := range key {
		key[i] = seed + byte(i)
	}
	path := filepath.Join(t.TempDir(), "swarm.key")
	body := fmt.Sprintf("/key/swarm/psk/1.0.0/\n/base16/\n%x\n", key)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestE2EPrivateMesh(t *testing.T) {
	key, other := writeSwarmKey(t, 1), writeSwarmKey(t, 2)
	a := startDaemon(t, t.TempDir(), "--swarm-key", key)
	b := startDaemon(t, t.TempDir(), "--swarm-key", key, "--bootstrap", a.addr)
	outsider := startDaemon(t, t.TempDir(), "--swarm-key", other, "--bootstrap", a.addr)
	if err := a.put("secret", "42"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "secret on the member with the key", func() bool {
		v, ok := b.get("secret")
		return ok && v == "42"
	})
	// By now the outsider has had as long as b to connect and sync.
	if v, ok := outsider.get("secret"); ok {
		t.Fatalf("node with another swarm key read %q", v)
	}
	if out, err := outsider.ctl("peers"); err != nil || out != "" {
		t.Fatalf("outsider peers = %q, %v", out, err)
	}
}

func TestE2ETokenAndMetrics(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, t.TempDir(), "--api-token-file", tok)
	if _, err := d.ctl("put", "k", "v"); err == nil || !strings.Contains(err.Error(), "missing bearer token") {
		t.Fatalf("put without token: %v", err)
	}
	if _, err := d.ctl("--token-file", tok, "put", "k", "v"); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", d.api+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{"gossipmesh_puts_total 1", "gossipmesh_keys 1", "gossipmesh_store_bytes ", "go_goroutines "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
