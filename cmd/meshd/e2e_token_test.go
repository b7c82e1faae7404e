package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// privateMesh, among startDaemon's extra arguments, asks for meshd's own
// default: a private mesh with the secret it makes.
const privateMesh = "(private mesh)"

// openUnlessSecret is the --open startDaemon adds to extra, or nil when
// extra names a mesh secret or asks for a private mesh.
func openUnlessSecret(extra []string) []string {
	for _, a := range extra {
		if a == privateMesh || strings.HasPrefix(a, "--swarm-key") || strings.HasPrefix(a, "--join-token") {
			return nil
		}
	}
	return []string{"--open"}
}

func TestE2EJoinToken(t *testing.T) {
	dataA := t.TempDir()
	a := startDaemon(t, dataA, privateMesh)
	if !strings.HasPrefix(a.token, tokenPrefix) {
		t.Fatalf("a fresh node printed no join token (got %q); stderr:\n%s", a.token, a.stderr.String())
	}
	secret, err := os.ReadFile(filepath.Join(dataA, secretFile))
	if err != nil {
		t.Fatalf("no mesh secret in the data dir: %v", err)
	}
	again, err := a.ctl("token")
	if err != nil || strings.TrimSpace(again) != a.token {
		t.Fatalf("meshctl token = %q, %v; want the printed token %q", again, err, a.token)
	}

	b := startDaemon(t, t.TempDir(), "--join-token", a.token)
	stranger := startDaemon(t, t.TempDir(), privateMesh, "--bootstrap", a.addr)
	if err := a.put("k", "v"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "k on the node that joined by token", func() bool {
		v, ok := b.get("k")
		return ok && v == "v"
	})
	// By now the stranger, with a secret of its own, has had as long.
	if v, ok := stranger.get("k"); ok {
		t.Fatalf("a fresh node with its own secret read %q from another mesh", v)
	}

	// The secret outlives a restart: the same mesh, no new token.
	a.stop()
	a2 := startDaemon(t, dataA, privateMesh, "--bootstrap", b.addr)
	if a2.token != "" {
		t.Errorf("a restart printed a new join token")
	}
	if now, _ := os.ReadFile(filepath.Join(dataA, secretFile)); !bytes.Equal(now, secret) {
		t.Errorf("the mesh secret changed across a restart")
	}
	if err := b.put("k2", "v2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "k2 on the restarted node", func() bool {
		v, ok := a2.get("k2")
		return ok && v == "v2"
	})
}

func TestE2EOpenMeshHasNoToken(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--open")
	if _, err := os.Stat(filepath.Join(d.cmd.Args[2], secretFile)); err == nil {
		t.Error("an open node made a mesh secret")
	}
	if _, err := d.ctl("token"); err == nil || !strings.Contains(err.Error(), "open mesh") {
		t.Fatalf("meshctl token on an open node: %v, want an error naming the open mesh", err)
	}
}

func TestE2EJoinTokenRefusals(t *testing.T) {
	a := startDaemon(t, t.TempDir(), privateMesh)
	otherDir := t.TempDir()
	startDaemon(t, otherDir, privateMesh).stop() // a node of its own mesh
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--join-token", "gmjt1_bm90IGpzb24"}, "meshd: --join-token: bad join token"},
		{[]string{"--join-token", "hello"}, "must start with " + tokenPrefix},
		{[]string{"--join-token", a.token, "--open"}, "goes without --open"},
		{[]string{"--join-token", a.token, "--mesh", "other"}, "--mesh other, but the join token is for a mesh with default"},
		{[]string{"--open", "--swarm-key", "/etc/swarm.key"}, "contradict"},
		{[]string{"--join-token", a.token, "--data", otherDir}, "holds the secret of another mesh"},
	} {
		args := append([]string{"--api", "127.0.0.1:0", "--mdns=false", "--listen", "/ip4/127.0.0.1/tcp/0", "--data", t.TempDir()}, tc.args...)
		code, _, stderr := runMeshd(t, args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("meshd %v: exit %d, stderr %q; want exit 2 and one line with %q", tc.args, code, stderr, tc.want)
		}
	}
}

// A start that fails leaves no mesh secret behind, so the operator's next
// try, with the join token meant, is not refused as another mesh's.
func TestE2EFailedStartKeepsNoSecret(t *testing.T) {
	a := startDaemon(t, t.TempDir(), privateMesh)
	dir := t.TempDir()
	code, _, stderr := runMeshd(t, "--data", dir, "--api", "127.0.0.1:0", "--mdns=false", "--listen", a.tcpListen())
	if code != 1 {
		t.Fatalf("start on a held port: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, secretFile)); err == nil {
		t.Fatal("a failed start left a mesh secret")
	}
	b := startDaemon(t, dir, "--join-token", a.token)
	if err := a.put("k", "v"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "k on the node that joined after a failed start", func() bool {
		v, ok := b.get("k")
		return ok && v == "v"
	})
}
