package main

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// meshctl against real daemons: readiness, members, join, a graceful
// leave that stops the daemon and is seen by its peer, and keys listed
// across holders under replication.
func TestE2EMembersJoinLeaveReady(t *testing.T) {
	a := startDaemon(t, t.TempDir())
	b := startDaemon(t, t.TempDir(), "--bootstrap", a.addr)
	if _, err := b.ctl("wait", "--ready", "--timeout", "20s"); err != nil {
		t.Fatal(err)
	}
	bid, err := b.ctl("id")
	if err != nil {
		t.Fatal(err)
	}
	bid = strings.SplitN(bid, "\n", 2)[0]
	eventually(t, 20*time.Second, "b alive in a's members", func() bool {
		out, err := a.ctl("members")
		return err == nil && strings.Contains(out, bid) && strings.Contains(out, "alive (self)")
	})

	c := startDaemon(t, t.TempDir())
	if out, err := c.ctl("join", a.addr); err != nil || !strings.HasPrefix(out, "joined ") {
		t.Fatalf("join: %q, %v", out, err)
	}
	eventually(t, 20*time.Second, "c among a's peers", func() bool {
		out, _ := a.ctl("peers")
		return strings.Count(out, "\n") == 2
	})

	if _, err := b.ctl("leave"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("meshd did not stop after meshctl leave")
	}
	if code := b.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("meshd exited %d after leave; stderr:\n%s", code, b.stderr.String())
	}
	// Announced: a lists b as left long before it would suspect it.
	out, err := a.ctl("--json", "members")
	if err != nil || !strings.Contains(out, `"peer_id":"`+bid+`","state":"left"`) {
		t.Fatalf("a's members after b left: %s %v", out, err)
	}
}

func TestE2EKeysAcrossHolders(t *testing.T) {
	flags := []string{"--partitions", "8", "--replication", "1"}
	a := startDaemon(t, t.TempDir(), flags...)
	b := startDaemon(t, t.TempDir(), append(flags, "--bootstrap", a.addr)...)
	c := startDaemon(t, t.TempDir(), append(flags, "--bootstrap", a.addr)...)
	for _, d := range []*daemon{a, b, c} {
		eventually(t, 20*time.Second, "three members", func() bool {
			out, _ := d.ctl("peers")
			return strings.Count(out, "\n") == 2
		})
	}
	var want bytes.Buffer
	for i := range 24 {
		k := fmt.Sprintf("k%02d", i)
		fmt.Fprintln(&want, k)
		if err := a.put(k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, "every key listed on every node", func() bool {
		for _, d := range []*daemon{a, b, c} {
			if out, err := d.ctl("keys"); err != nil || out != want.String() {
				return false
			}
		}
		return true
	})
	local, err := c.ctl("keys", "--local")
	if err != nil || local == want.String() {
		t.Fatalf("keys --local on c lists %q, %v: R = 1 should leave some keys elsewhere", local, err)
	}
}

// A value over the old fixed 2 MiB body limit is taken when
// --max-value-bytes allows it.
func TestE2ELargeValueWithinMaxValueBytes(t *testing.T) {
	a := startDaemon(t, t.TempDir(), "--max-value-bytes", "3000000")
	big := bytes.Repeat([]byte("x"), 2_900_000)
	if err := a.put("big", string(big)); err != nil {
		t.Fatal(err)
	}
	if v, ok := a.get("big"); !ok || len(v) != len(big) {
		t.Fatalf("got %d bytes, %v", len(v), ok)
	}
	if err := a.put("too-big", string(big)+strings.Repeat("x", 200_000)); err == nil || !strings.Contains(err.Error(), "413") {
		t.Fatalf("over --max-value-bytes: %v", err)
	}
}

// meshctl watch outlives a meshd restart: it reconnects, says on stderr
// that changes may have been missed, and prints what happens next.
func TestE2EWatchSurvivesRestart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := l.Addr().String()
	l.Close()
	data := t.TempDir()
	a := startDaemon(t, data, "--api", api)
	_, meshctl := binaries(t)
	var out, errb lockedBuffer
	watch := exec.Command(meshctl, "--api", api, "watch", "w/")
	watch.Stdout, watch.Stderr = &out, &errb
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { watch.Process.Kill(); watch.Wait() }()
	eventually(t, 20*time.Second, "first change watched", func() bool {
		a.put("w/1", "one") // until the watch is registered
		return strings.Contains(out.String(), "put\tw/1\tlocal\tone\n")
	})
	a.stop()
	b := startDaemon(t, data, "--api", api)
	eventually(t, 30*time.Second, "change after the restart", func() bool {
		b.put("w/2", "two")
		return strings.Contains(out.String(), "put\tw/2\tlocal\ttwo\n")
	})
	if s := errb.String(); !strings.Contains(s, "reconnecting") || !strings.Contains(s, "changes may have been missed") {
		t.Fatalf("watch stderr: %q", s)
	}
}

// A binary key survives a shell round trip with --encoding.
func TestE2EBinaryKeyRoundTrip(t *testing.T) {
	a := startDaemon(t, t.TempDir())
	if _, err := a.ctl("--encoding", "hex", "put", "00ff0a", "c0ffee"); err != nil {
		t.Fatal(err)
	}
	listed, err := a.ctl("--encoding", "base64", "keys")
	if err != nil || listed != "AP8K\n" {
		t.Fatalf("keys = %q, %v", listed, err)
	}
	if v, err := a.ctl("--encoding", "base64", "get", strings.TrimSpace(listed)); err != nil || v != "wP/u\n" {
		t.Fatalf("get = %q, %v", v, err)
	}
	if _, err := a.ctl("get", ""); err == nil || !strings.Contains(err.Error(), "the key is empty") {
		t.Fatalf("empty key: %v", err)
	}
}
