package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gossipmesh/gossipmesh/node/backup"
	"github.com/schollz/progressbar/v3"
)

// progress wraps w in a byte-counting progress bar drawn on stdout when
// stdout is a terminal; total -1 means unknown (a spinner).
func (a *app) progress(total int64, what string) (*progressbar.ProgressBar, func()) {
	if !isTerminal(a.stdout) || a.jsonOut {
		return nil, func() {}
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(a.stdout),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100_000_000), // 100 ms
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
	)
	return bar, func() { _ = bar.Finish() }
}

// backup downloads into a temporary file beside FILE, verifies it, and only
// then renames it into place, so FILE is either a complete, checked backup
// or untouched.
func (a *app) backup(ctx context.Context, args []string) error {
	dst := args[0]
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.partial")
	if err != nil {
		return fmt.Errorf("backup: %v", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	defer tmp.Close()

	var w io.Writer = tmp
	bar, done := a.progress(-1, "backing up")
	if bar != nil {
		w = io.MultiWriter(tmp, bar)
	}
	size, err := a.c.Backup(ctx, w)
	done()
	if err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("backup: %v", err)
	}
	n, err := backup.Check(tmp)
	if err != nil {
		return fmt.Errorf("backup: meshd sent a bad file (%v); %s left unchanged", err, dst)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("backup: %v", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("backup: %v", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("backup: %v", err)
	}
	if a.jsonOut {
		return a.printJSON(map[string]any{"file": dst, "records": n, "bytes": size})
	}
	_, err = fmt.Fprintf(a.stdout, "backed up %d records (%d bytes) to %s\n", n, size, dst)
	return err
}

// restore checks the file here first, so a bad file is refused with a clear
// message before any upload; meshd verifies it again before merging.
func (a *app) restore(ctx context.Context, args []string) error {
	f, err := os.Open(args[0])
	if err != nil {
		return fmt.Errorf("restore: %v", err)
	}
	defer f.Close()
	if _, err := backup.Check(f); err != nil {
		return fmt.Errorf("restore: %s: %v; nothing was changed", args[0], err)
	}
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("restore: %v", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("restore: %v", err)
	}
	var body io.Reader = f
	bar, done := a.progress(info.Size(), "uploading")
	if bar != nil {
		body = io.TeeReader(f, bar)
	}
	n, err := a.c.Restore(ctx, body, info.Size())
	done()
	if err != nil {
		return fmt.Errorf("restore: %v", err)
	}
	if a.jsonOut {
		return a.printJSON(map[string]int{"records": n})
	}
	_, err = fmt.Fprintf(a.stdout, "restored %d records from %s\n", n, args[0])
	return err
}
