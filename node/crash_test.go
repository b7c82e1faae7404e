package node

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The child half of TestKillNineKeepsAcknowledgedWrites: write keys to a
// pebble store forever, printing each one once Put has acknowledged it.
func TestCrashChildWriter(t *testing.T) {
	dir := os.Getenv("GOSSIPMESH_CRASH_DIR")
	if dir == "" {
		t.Skip("child process of TestKillNineKeepsAcknowledgedWrites")
	}
	cfg := testConfig()
	cfg.Memory = false
	cfg.DataDir = dir
	n, err := New(context.Background(), cfg)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		k := fmt.Sprintf("k%06d", i)
		if err := n.Put(context.Background(), []byte(k), []byte("v"+k)); err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
		fmt.Fprintln(out, "acked", k)
		out.Flush()
	}
}

// A node killed with SIGKILL in the middle of a write loop loses none of the
// writes it acknowledged: Put returns only after a synced commit.
func TestKillNineKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChildWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GOSSIPMESH_CRASH_DIR="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	lines := bufio.NewScanner(stdout)
	deadline := time.Now().Add(60 * time.Second)
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		if len(f) == 2 && f[0] == "acked" {
			acked = append(acked, f[1])
		} else if len(f) > 0 && f[0] == "error" {
			t.Fatalf("child: %s", lines.Text())
		}
		if len(acked) == 300 || time.Now().After(deadline) {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Writes acknowledged between our last read and the kill count too.
	for lines.Scan() {
		if f := strings.Fields(lines.Text()); len(f) == 2 && f[0] == "acked" {
			acked = append(acked, f[1])
		}
	}
	_ = cmd.Wait()
	if len(acked) == 0 {
		t.Fatal("child acknowledged no writes")
	}
	cfg := testConfig()
	cfg.Memory = false
	cfg.DataDir = dir
	n := startNode(t, cfg)
	ctx := context.Background()
	for _, k := range acked {
		if v, err := n.Get(ctx, []byte(k)); err != nil || string(v) != "v"+k {
			t.Fatalf("acknowledged write %s lost after kill -9: %q, %v (of %d acknowledged)", k, v, err, len(acked))
		}
	}
	t.Logf("all %d acknowledged writes survived kill -9", len(acked))
}
