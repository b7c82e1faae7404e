package node

import (
	"fmt"
	"log/slog"
	gosync "sync"
	"sync/atomic"
	"time"
)

// A storage quota (Config.MaxStoreBytes) is a full disk the operator
// chose: at it the node behaves as below the free-space floor (see
// diskGuard): local writes fail with ErrStoreFull, remote states are not
// stored, and reads, gossip and anti-entropy of what it holds go on. The
// store's size is measured the cheap way its backend allows (storeSize),
// at most quotaCheckInterval apart, and at once before a batch when the
// last measure plus what was staged since reaches the quota, or while the
// node is at it, so it sees both a burst coming and space going. Within
// a batch, the changes staged so far count too (txn.overQuota), so one
// batch of a flood cannot carry the store past the quota by more than
// the one change that crossed it.
//
// One exception: a register delete of a live value is let through at the
// quota (see localOp.frees). It is how an operator makes room: its
// tombstone is smaller than most values, gives the value's space back
// (at once in memory, at compaction in pebble), and is itself collected
// after the grace. A delete that would only add a tombstone (the key has
// no value here) is refused.

// quotaCheckInterval is how stale the quota's measure may get while the
// store is well below the quota.
const quotaCheckInterval = time.Second

// A store at or near its quota (within the margin of roomFraction) is
// compacted when it changed since its last
// compaction (deletes, collected tombstones, partitions dropped): pebble
// gives the space of deleted and overwritten entries back only when it
// compacts them, and a small store may never reach its own compaction
// triggers. A compaction rewrites the whole store, so it waits until the
// store has been quiet for quotaCompactQuiet (an operator's run of deletes
// is done), or quotaCompactMax while changes keep coming, and comes at
// most every quotaCompactMin.
const (
	quotaCompactQuiet = time.Second
	quotaCompactMin   = time.Minute
	quotaCompactMax   = 5 * time.Minute
)

// roomFraction sets the hysteresis of the full state a node announces to
// placement: announced full at the quota (or the floor), it is announced
// to have room again only once it is a 1/roomFraction of the quota below
// it (or as much above the floor). Without the margin a node at the
// boundary would flap in and out of placement with every write and
// compaction, moving partitions each time.
const roomFraction = 8

// storeQuota tells the event loop whether the store is at its quota.
type storeQuota struct {
	limit   uint64                 // 0: no quota
	size    func() (uint64, error) // nil: the store cannot be measured
	amp     uint64                 // what a committed byte may take before the next measure
	compact func() error           // nil: nothing to compact (memory)
	log     *slog.Logger

	mu        gosync.Mutex
	checked   time.Time // when size was last called (monotonic)
	measured  uint64    // its answer
	staged    uint64    // bytes committed since, as entryBytes counts them, times amp
	dirty     bool      // something was committed since the last compaction
	dirtied   time.Time // when dirty was set
	changed   time.Time // when something was last committed
	compacted time.Time
	failing   bool // the last measure failed (logged once a streak)

	isFull atomic.Bool
	used   atomic.Uint64 // the last measure plus what was committed since
}

// newStoreQuota makes the quota of a store measured by size. A store with
// a compact function is pebble's: a committed byte may take writeAmp
// bytes before the next measure sees them (see diskGuard), so between
// measures the estimate counts that much, which makes it measure sooner
// and refuse no later than the disk fills; the memory store's count is
// exact.
func newStoreQuota(limit uint64, size func() (uint64, error), compact func() error, log *slog.Logger) *storeQuota {
	q := &storeQuota{limit: limit, size: size, compact: compact, log: log, amp: 1}
	if compact != nil {
		q.amp = writeAmp
	}
	if limit > 0 && size == nil {
		log.Warn("MaxStoreBytes has no effect: the store does not report its size (a Datastore without DiskUsage)", "max_store_bytes", limit)
	}
	q.refresh()
	return q
}

// enabled reports whether there is a quota to keep.
func (q *storeQuota) enabled() bool { return q.measuring() && q.limit > 0 }

// measuring reports whether the store's size is measured: for the quota,
// and for status and metrics without one.
func (q *storeQuota) measuring() bool { return q != nil && q.size != nil }

// full reports whether the store was at its quota at the last check.
func (q *storeQuota) full() bool { return q.enabled() && q.isFull.Load() }

// usedBytes is the store's size as last measured plus what was committed
// since (0 when not measured).
func (q *storeQuota) usedBytes() uint64 {
	if !q.measuring() {
		return 0
	}
	return q.used.Load()
}

// over reports whether extra bytes more than the current estimate reach
// the quota: a batch asks with what it has staged so far.
func (q *storeQuota) over(extra uint64) bool {
	return q.enabled() && q.used.Load()+extra >= q.limit
}

// hasRoom reports whether the store is a margin below its quota: the
// hysteresis of the full state announced to placement (roomFraction).
func (q *storeQuota) hasRoom() bool {
	return !q.enabled() || q.used.Load() < q.limit-q.limit/roomFraction
}

// check refreshes the measure when it is stale, when the store is at its
// quota (to see space come back), or when what was committed since may
// have reached it. Before every batch.
func (q *storeQuota) check() {
	if !q.measuring() {
		return
	}
	q.mu.Lock()
	stale := time.Since(q.checked) >= quotaCheckInterval ||
		q.enabled() && (q.isFull.Load() || q.measured+q.staged >= q.limit)
	q.mu.Unlock()
	if stale {
		q.refresh()
	}
}

// refresh measures the store now and updates the full state.
func (q *storeQuota) refresh() {
	if !q.measuring() {
		return
	}
	size, err := q.size()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.checked = time.Now()
	if err != nil {
		// An unknown size keeps the last state, as with a failing statfs.
		if !q.failing {
			q.log.Warn("store size measure failed; the quota's full state stays as it was", "err", err)
		}
		q.failing = true
		return
	}
	q.failing = false
	q.measured, q.staged = size, 0
	q.used.Store(size)
	full := q.limit > 0 && size >= q.limit
	if was := q.isFull.Swap(full); was != full {
		if full {
			q.log.Error("store at its quota: local writes refused, remote states not stored until it shrinks (delete keys to make room)",
				"store_bytes", size, "max_store_bytes", q.limit)
		} else {
			q.log.Info("store below its quota again: writes accepted", "store_bytes", size, "max_store_bytes", q.limit)
		}
	}
}

// wrote accounts for the bytes a batch committed (entryBytes of each
// entry written).
func (q *storeQuota) wrote(n uint64, changed bool) {
	if !q.enabled() {
		return
	}
	q.mu.Lock()
	q.staged += q.amp * n
	if changed {
		if !q.dirty {
			q.dirty, q.dirtied = true, time.Now()
		}
		q.changed = time.Now()
	}
	q.used.Store(q.measured + q.staged)
	q.mu.Unlock()
}

// compactIfDue compacts a store near its quota that changed since its
// last compaction, when due (see quotaCompactQuiet), then measures it
// again.
func (q *storeQuota) compactIfDue() {
	if !q.enabled() || q.compact == nil || q.hasRoom() {
		return
	}
	q.mu.Lock()
	due := q.dirty && time.Since(q.compacted) >= quotaCompactMin &&
		(time.Since(q.changed) >= quotaCompactQuiet || time.Since(q.dirtied) >= quotaCompactMax)
	if due {
		q.dirty, q.compacted = false, time.Now()
	}
	q.mu.Unlock()
	if !due {
		return
	}
	if err := q.compact(); err != nil {
		q.log.Warn("compaction of the store at its quota failed", "err", err)
		return
	}
	q.refresh()
}

// errFull is the error a refused local write gets.
func (q *storeQuota) errFull() error {
	return fmt.Errorf("%w: the store holds %d bytes, at its quota of %d", ErrStoreFull, q.usedBytes(), q.limit)
}
