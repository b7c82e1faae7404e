package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	ds "github.com/ipfs/go-datastore"
)

// The data directory lock. Pebble locks its own directory too, but its
// refusal reads "resource temporarily unavailable"; this lock comes first
// and says what is going on: another node has the directory open, and
// which process that is.
const (
	lockFile = "node.lock"
	// pidFile, beside the lock, holds the PID of the process holding it.
	// A process killed with -9 leaves it behind; the lock itself goes
	// with the process, so a stale PID file is simply overwritten.
	pidFile = "node.pid"
)

// dirLock is a held data directory lock.
type dirLock struct {
	f   *os.File
	dir string
}

// lockDataDir takes dir's lock or fails with ErrDataDirInUse, naming the
// PID of the holder when its PID file says.
func lockDataDir(dir string) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStore, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: lock: %v", ErrStore, err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("%w: %s is in use by another node%s", ErrDataDirInUse, dir, holder(dir))
		}
		return nil, fmt.Errorf("%w: lock %s: %v", ErrStore, dir, err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := os.WriteFile(filepath.Join(dir, pidFile), pid, 0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: pid file: %v", ErrStore, err)
	}
	return &dirLock{f: f, dir: dir}, nil
}

// holder describes the lock's holder from its PID file: " (PID 1234)", or
// "" when the file is missing or unreadable.
func holder(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return ""
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return ""
	}
	if pid == os.Getpid() {
		return fmt.Sprintf(" (PID %d: this process)", pid)
	}
	return fmt.Sprintf(" (PID %d)", pid)
}

// release removes the PID file and lets the lock go.
func (l *dirLock) release() error {
	err := os.Remove(filepath.Join(l.dir, pidFile))
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return errors.Join(err, l.f.Close()) // closing the file drops the lock
}

// lockedStore is a store that holds its data directory's lock until it is
// closed.
type lockedStore struct {
	ds.Batching
	lock *dirLock
}

func (s *lockedStore) Close() error {
	return errors.Join(s.Batching.Close(), s.lock.release())
}
