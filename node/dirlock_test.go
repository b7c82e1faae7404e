package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecondNodeOnDataDirIsRefusedWithHolder(t *testing.T) {
	cfg := testConfig()
	cfg.Memory = false
	cfg.DataDir = t.TempDir()
	first := startNode(t, cfg)

	second, err := New(context.Background(), cfg)
	if err == nil {
		second.Close()
		t.Fatal("a second node opened a data directory in use")
	}
	want := fmt.Sprintf("(PID %d", os.Getpid())
	if !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), cfg.DataDir) || !strings.Contains(err.Error(), want) {
		t.Fatalf("second New: %v; want ErrDataDirInUse naming %s and %s", err, cfg.DataDir, want)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, pidFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("PID file after Close: %v, want it removed", err)
	}
	startNode(t, cfg) // the lock went with the first node
}

// A PID file left by a killed process does not keep the directory locked.
func TestStalePIDFileIsOverwritten(t *testing.T) {
	cfg := testConfig()
	cfg.Memory = false
	cfg.DataDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg.DataDir, pidFile), []byte("999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startNode(t, cfg)
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, pidFile))
	if err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(os.Getpid()) {
		t.Fatalf("PID file %q, %v; want this process's PID", b, err)
	}
}
