package node

import (
	"context"

	"github.com/cockroachdb/pebble/v2"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	pebbleds "github.com/ipfs/go-ds-pebble"
)

// How big the store is, measured the cheap way each backend allows: from
// pebble's own accounting, from a byte count the memory store keeps, or
// from a given Datastore's DiskUsage. Never a directory walk.

// entryOverhead is what one stored entry costs beyond its key and value:
// the memory store's estimate of a map entry (its bucket slot, the key's
// string and the value's slice headers), and about pebble's per-entry
// cost (an 8-byte trailer, block and index shares) too. The quota counts
// staged writes with it, so its estimate between measures stays at or
// above what the memory store reports.
const entryOverhead = 64

// entryBytes is the size the quota counts for one stored entry.
func entryBytes(key ds.Key, value []byte) uint64 {
	return uint64(len(key.String()) + len(value) + entryOverhead)
}

// sizedMap is the memory store: a map datastore that keeps the byte count
// of what it holds, reported as its DiskUsage, so quotas work in tests and
// the simulator. Callers serialise access (it runs under MutexWrap).
type sizedMap struct {
	*ds.MapDatastore
	bytes uint64
}

var (
	_ ds.Batching            = (*sizedMap)(nil)
	_ ds.PersistentDatastore = (*sizedMap)(nil)
)

func newSizedMap() *sizedMap { return &sizedMap{MapDatastore: ds.NewMapDatastore()} }

// NewMemoryDatastore returns the in-memory datastore a Memory node runs
// on, safe for concurrent use, for callers that keep a node's store
// beyond it (Config.Datastore; a simulator's). It reports the bytes it
// holds as its DiskUsage, so Config.MaxStoreBytes works on it.
func NewMemoryDatastore() ds.Batching { return dssync.MutexWrap(newSizedMap()) }

func (m *sizedMap) Put(ctx context.Context, key ds.Key, value []byte) error {
	m.forget(ctx, key)
	m.bytes += entryBytes(key, value)
	return m.MapDatastore.Put(ctx, key, value)
}

func (m *sizedMap) Delete(ctx context.Context, key ds.Key) error {
	m.forget(ctx, key)
	return m.MapDatastore.Delete(ctx, key)
}

// forget takes key's current entry, if any, out of the count.
func (m *sizedMap) forget(ctx context.Context, key ds.Key) {
	if n, err := m.MapDatastore.GetSize(ctx, key); err == nil {
		m.bytes -= entryBytes(key, make([]byte, n))
	}
}

// Batch applies its operations through Put and Delete, so they are counted.
func (m *sizedMap) Batch(context.Context) (ds.Batch, error) { return ds.NewBasicBatch(m), nil }

// DiskUsage reports the bytes the map holds, entry overhead included.
func (m *sizedMap) DiskUsage(context.Context) (uint64, error) { return m.bytes, nil }

// pebbleUsage is the bytes pebble's files take. Pebble's DiskSpaceUsage
// counts the live write-ahead log at the size it had when it was opened,
// so it misses up to a memtable of recent writes (measured: 0.65 MB
// reported for 1.3 MB on disk); the WAL's logical size stands in for it
// when larger.
func pebbleUsage(db *pebble.DB) uint64 {
	m := db.Metrics()
	usage := m.DiskSpaceUsage()
	if m.WAL.Size > m.WAL.PhysicalSize {
		usage += m.WAL.Size - m.WAL.PhysicalSize
	}
	return usage
}

// pebbleOf returns the pebble database under the node's store wrappers,
// or nil when the store is not pebble.
func pebbleOf(store ds.Datastore) *pebble.DB {
	for {
		switch s := store.(type) {
		case *guardedStore:
			store = s.Batching
		case *sealedStore:
			store = s.child
		case *lockedStore:
			store = s.Batching
		case *pebbleds.Datastore:
			return s.DB
		default:
			return nil
		}
	}
}

// baseStore returns the datastore under the node's own wrappers.
func baseStore(store ds.Datastore) ds.Datastore {
	for {
		switch s := store.(type) {
		case *guardedStore:
			store = s.Batching
		case *sealedStore:
			store = s.child
		case *lockedStore:
			store = s.Batching
		default:
			return store
		}
	}
}

// storeSize returns a measure of the store's size, or nil when it has
// none: pebble's accounting, or the DiskUsage of a store that reports it
// (the memory store, a given Datastore implementing PersistentDatastore).
func storeSize(ctx context.Context, store ds.Datastore) func() (uint64, error) {
	if db := pebbleOf(store); db != nil {
		return func() (uint64, error) { return pebbleUsage(db), nil }
	}
	p, ok := baseStore(store).(ds.PersistentDatastore)
	if !ok {
		return nil
	}
	return func() (uint64, error) { return p.DiskUsage(ctx) }
}

// compactor returns a function that compacts the whole store, or nil
// when the store is not pebble (the memory store gives space back on
// delete).
func compactor(ctx context.Context, store ds.Datastore) func() error {
	db := pebbleOf(store)
	if db == nil {
		return nil
	}
	// Every datastore key starts with '/'; '0' is the byte after it.
	return func() error { return db.Compact(ctx, []byte("/"), []byte("0"), false) }
}
