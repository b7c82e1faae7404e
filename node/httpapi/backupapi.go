package httpapi

import (
	"errors"
	"iter"
	"net/http"
	"time"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/gossipmesh/gossipmesh/node/backup"
)

// backup streams a backup file of every key state. The file's trailer is
// written last, so a failure mid-stream leaves the client a file that
// backup.Verify refuses; the connection is also aborted so the client sees
// an error rather than a short 200.
func (s *server) backup(w http.ResponseWriter, r *http.Request) {
	// Pull the first record before answering, so that a node that cannot
	// export at all (closed, store failure) gets a JSON error status.
	next, stop := iter.Pull2(s.b.ExportStates(r.Context()))
	defer stop()
	first, err, more := next()
	if more && err != nil {
		s.fail(w, r, err)
		return
	}
	recs := func(yield func(backup.Record, error) bool) {
		for rec, err, ok := first, err, more; ok; rec, err, ok = next() {
			if !yield(backup.Record{Key: rec.Key, State: rec.State}, err) {
				return
			}
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="gossipmesh-`+time.Now().UTC().Format("20060102T150405Z")+`.gmbk"`)
	if _, err := backup.WriteWith(w, recs, backup.WriteOptions{Key: s.backupKey()}); err != nil {
		s.log.Warn("backup failed", "err", err)
		panic(http.ErrAbortHandler)
	}
}

// restore verifies the uploaded backup completely (spooled to a temporary
// file) before merging anything, so a bad file changes nothing.
func (s *server) restore(w http.ResponseWriter, r *http.Request) {
	opts := backup.RestoreOptions{TempDir: s.opts.TempDir, Key: s.backupKey()}
	n, err := backup.Restore(r.Body, opts, func(batch []backup.Record) error {
		recs := make([]node.StateRecord, len(batch))
		for i, b := range batch {
			recs[i] = node.StateRecord{Key: b.Key, State: b.State}
		}
		return s.b.MergeStates(r.Context(), recs)
	})
	if err != nil && statusOf(err) == http.StatusInternalServerError && r.Context().Err() == nil {
		// The file verified, so a refusal from the node means a record it
		// will not take (a state it cannot decode): the input's fault.
		err = badRequest("backup holds a record this node refuses: %v", err)
	}
	if errors.Is(err, backup.ErrSealed) || errors.Is(err, backup.ErrWrongKey) {
		err = badRequest("%v: restore it into a node with the store key of the node that made it (--encryption-key-file)", err)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, RestoreResponse{Records: n})
}

// backupKeyer is the optional Backend method that seals backups
// (node.Node has it): nil for plain backups.
type backupKeyer interface{ BackupKey() []byte }

var _ backupKeyer = (*node.Node)(nil)

func (s *server) backupKey() []byte {
	if k, ok := s.b.(backupKeyer); ok {
		return k.BackupKey()
	}
	return nil
}
