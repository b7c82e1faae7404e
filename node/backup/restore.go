package backup

import (
	"fmt"
	"io"
	"os"
)

// RestoreOptions tunes Restore. The zero value is usable.
type RestoreOptions struct {
	// TempDir receives the spooled copy of the input. Default os.TempDir().
	TempDir string
	// BatchRecords is the most records passed to one merge call. Default 1000.
	BatchRecords int
	// BatchBytes is the most key and state bytes passed to one merge call.
	// Default 4 MiB.
	BatchBytes int
	// Key opens a sealed backup (WriteOptions.Key); a plain backup is
	// restored whatever it is. Default nil: a sealed backup is refused
	// with ErrSealed.
	Key []byte
}

// Restore reads a whole backup from r, verifies it, and only then passes its
// records to merge in batches. A truncated or corrupted input is refused
// before merge is ever called, so nothing changes.
//
// Because r may be a network stream that cannot be read twice, Restore
// spools it to a temporary file while verifying (one pass), then reads the
// file back (second pass). The file is removed before Restore returns.
//
// If merge fails part way, the batches already merged stay merged. With CRDT
// merge that is harmless: running the same restore again converges to the
// same state.
func Restore(r io.Reader, opts RestoreOptions, merge func([]Record) error) (int, error) {
	if opts.BatchRecords <= 0 {
		opts.BatchRecords = 1000
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 4 << 20
	}
	f, err := os.CreateTemp(opts.TempDir, "gmbk-restore-*")
	if err != nil {
		return 0, fmt.Errorf("backup: spool restore input: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()

	n, err := VerifyWith(io.TeeReader(r, f), opts.Key)
	if err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("backup: rewind spool file: %w", err)
	}
	var batch []Record
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := merge(batch)
		batch, size = nil, 0
		return err
	}
	err = ReadWith(f, opts.Key, func(rec Record) error {
		batch = append(batch, rec)
		size += len(rec.Key) + len(rec.State)
		if len(batch) >= opts.BatchRecords || size >= opts.BatchBytes {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}
