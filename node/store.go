package node

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/gossipmesh/gossipmesh/crdt"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	pebbleds "github.com/ipfs/go-ds-pebble"
)

// Datastore layout. User keys are arbitrary bytes, so they are hex-encoded
// into one path component: a '/' inside a key must not become a namespace.
//
//	/k/<hex key>  -> canonical crdt encoding of the key's state
//	/h/<hex key>  -> hint: this node's writes to a key whose partition it
//	                 does not hold, until a holder has them
//	/o/<hex key>  -> own record: this node's part of the key's state (its
//	                 counter entry, its dots), kept whatever placement says
//	                 and however often the key's hint or partition leaves
//	                 this node, so no later operation here can reuse a dot
//	                 or fall below a total it already gave away
const (
	statePrefix = "/k"
	hintPrefix  = "/h"
	ownPrefix   = "/o"
)

func ownKey(key []byte) ds.Key {
	return ds.RawKey(ownPrefix + "/" + hex.EncodeToString(key))
}

func hintKey(key []byte) ds.Key {
	return ds.RawKey(hintPrefix + "/" + hex.EncodeToString(key))
}

func stateKey(key []byte) ds.Key {
	return ds.RawKey(statePrefix + "/" + hex.EncodeToString(key))
}

// userKey recovers a user key from a datastore key under a layout prefix.
func userKey(k, prefix string) ([]byte, error) {
	rest, ok := strings.CutPrefix(k, prefix+"/")
	if !ok {
		return nil, fmt.Errorf("%w: unexpected datastore key %q", ErrStore, k)
	}
	return hex.DecodeString(rest)
}

// pebbleMemTableBytes is pebble's memtable size (its default). Pebble's
// write-ahead log takes about four times as much on disk whatever the
// data (the live log and the ones it keeps for reuse), which sets the
// smallest quota an on-disk store can keep (minDiskQuota).
const pebbleMemTableBytes = 4 << 20

// minDiskQuota is the smallest MaxStoreBytes of a pebble store: half for
// pebble's log, half for data.
const minDiskQuota = 8 * pebbleMemTableBytes

// openStore returns the datastore the config asks for and whether the node
// owns it (and so must close it).
func openStore(cfg *Config) (ds.Batching, bool, error) {
	switch {
	case cfg.Datastore != nil:
		return cfg.Datastore, false, nil
	case cfg.Memory:
		return NewMemoryDatastore(), true, nil
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, false, err
	}
	dir := filepath.Join(cfg.DataDir, "store")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		lock.release()
		return nil, false, fmt.Errorf("%w: %v", ErrStore, err)
	}
	// Batches are written without sync; a batch holding a write that is
	// acknowledged to a caller is followed by Sync, which syncs pebble's WAL
	// and with it every earlier batch (see txn.commit). States merged from
	// peers need no fsync of their own: anti-entropy restores them after a
	// crash, and not syncing them keeps gossip latency off the disk.
	store, err := pebbleds.NewDatastore(dir, pebbleds.WithPebbleWriteOptions(pebble.NoSync),
		pebbleds.WithPebbleOpts(&pebble.Options{Logger: pebbleLogger{log: cfg.Logger, dir: dir}, MemTableSize: pebbleMemTableBytes}))
	if err != nil {
		lock.release()
		return nil, false, fmt.Errorf("%w: open %s: %v", ErrStore, dir, err)
	}
	return &lockedStore{Batching: store, lock: lock}, true, nil
}

// pebbleLogger sends pebble's logs to the node's logger. Pebble calls
// Fatalf when it cannot go on (a WAL write that failed, for one: its
// commit pipeline cannot recover); the node then logs the error with the
// store's free space at error level and panics, so the process never ends
// silently. The disk guard (Config.MinFreeBytes) keeps a full disk from
// getting there.
type pebbleLogger struct {
	log *slog.Logger
	dir string
}

var _ pebble.Logger = pebbleLogger{}

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("pebble: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Warn("pebble: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	attrs := []any{"dir", l.dir, "err", msg}
	if free := statfsFree(l.dir); free != nil {
		if avail, err := free(); err == nil {
			attrs = append(attrs, "free_bytes", avail)
		}
	}
	l.log.Error("pebble failed and cannot go on; the node stops", attrs...)
	panic(fmt.Errorf("%w: pebble: %s", ErrStore, msg))
}

// partitionOf maps a key to its partition with a stable, domain-separated
// hash, so the mapping never changes between versions or machines.
func partitionOf(key []byte, partitions int) uint32 {
	h := sha256.New()
	h.Write([]byte("gossipmesh/partition/v1\x00"))
	h.Write(key)
	var sum [sha256.Size]byte
	return uint32(binary.BigEndian.Uint64(h.Sum(sum[:0])[:8]) % uint64(partitions))
}

// loadState reads the encoded state of key; (nil, nil) when absent.
func loadState(ctx context.Context, store ds.Read, key []byte) ([]byte, error) {
	return loadRaw(ctx, store, stateKey(key))
}

// loadRaw reads a datastore value; (nil, nil) when absent.
func loadRaw(ctx context.Context, store ds.Read, k ds.Key) ([]byte, error) {
	b, err := store.Get(ctx, k)
	if errors.Is(err, ds.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeErr(err)
	}
	return b, nil
}

// storeErr wraps a datastore error in ErrStore; ErrClosed (the node is
// closing) and nil are returned as they are.
func storeErr(err error) error {
	if err == nil || errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrStore, err)
}

// decodeStored decodes the stored state of key.
func decodeStored(key, b []byte) (crdt.State, error) {
	s, err := crdt.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: stored state of %q: %v", ErrStore, key, err)
	}
	return s, nil
}

// scanStates calls fn for every stored (key, encoded state), in key order.
func scanStates(ctx context.Context, store ds.Read, fn func(key, state []byte) error) error {
	return scanPrefix(ctx, store, statePrefix, fn)
}

// hasStates reports whether the store holds any key state.
func hasStates(ctx context.Context, store ds.Read) (bool, error) {
	res, err := store.Query(ctx, dsq.Query{Prefix: statePrefix, KeysOnly: true, Limit: 1})
	if err != nil {
		return false, storeErr(err)
	}
	defer res.Close()
	for r := range res.Next() {
		return r.Error == nil, storeErr(r.Error)
	}
	return false, nil
}

// scanRaw calls fn for every (datastore key, value) under prefix.
func scanRaw(ctx context.Context, store ds.Read, prefix string, fn func(k string, v []byte) error) error {
	res, err := store.Query(ctx, dsq.Query{Prefix: prefix})
	if err != nil {
		return storeErr(err)
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return storeErr(r.Error)
		}
		if err := fn(r.Key, r.Value); err != nil {
			return err
		}
	}
	return nil
}

// scanPrefix calls fn for every (user key, value) under a layout prefix.
func scanPrefix(ctx context.Context, store ds.Read, prefix string, fn func(key, state []byte) error) error {
	return scanRaw(ctx, store, prefix, func(k string, v []byte) error {
		key, err := userKey(k, prefix)
		if err != nil {
			return err
		}
		return fn(key, v)
	})
}
