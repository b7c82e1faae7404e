package node

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	gosync "sync"
	"sync/atomic"
	"time"
)

// A full disk is a state of the node, not a crash. Pebble treats a failed
// WAL write as fatal (its commit pipeline cannot recover), so the node
// keeps a free-space floor (Config.MinFreeBytes) above the point where
// pebble would hit ENOSPC: below it, local writes fail with ErrStoreFull
// and remote states are not stored, while reads, outgoing gossip and
// anti-entropy of what the node holds go on. The guard measures free space
// with statfs at most every diskCheckInterval, and at once whenever its
// estimate (the last measure less the bytes committed since) falls below
// the floor or the node is full, so it notices both a burst of writes and
// space coming back. A ballast file (Config.BallastBytes) reserves room an
// operator can delete to let a full node write again.

// diskCheckInterval is how stale the guard's measure may get while the
// node is not full and writes little.
const diskCheckInterval = time.Second

// writeAmp is how many bytes of disk the guard expects a committed byte
// to take before its next measure: pebble writes it to the WAL, then to an
// sstable when the memtable is flushed, and again when it is compacted.
// Overestimated, it only makes the guard measure sooner.
const writeAmp = 3

// ballastName is the ballast file in DataDir.
const ballastName = "ballast"

// diskGuard tells the event loop whether the store is full.
type diskGuard struct {
	floor uint64
	free  func() (uint64, error) // nil: no disk to guard (memory stores)
	log   *slog.Logger

	mu      gosync.Mutex
	checked time.Time // when free was last called (monotonic)
	avail   uint64    // its answer
	written uint64    // bytes committed since, times writeAmp: the space they may take
	failing bool      // the last measure failed (logged once a streak)

	isFull  atomic.Bool
	freeNow atomic.Uint64 // the last estimate of free bytes
	refused atomic.Uint64 // remote states not stored while full

	quota     *storeQuota // Config.MaxStoreBytes; full() covers it too
	announced atomic.Bool // full as announced to placement (announceFull)
}

func newDiskGuard(floor uint64, free func() (uint64, error), log *slog.Logger) *diskGuard {
	g := &diskGuard{floor: floor, free: free, log: log}
	g.refresh()
	return g
}

// enabled reports whether the guard watches a disk.
func (g *diskGuard) enabled() bool { return g != nil && g.free != nil && g.floor > 0 }

// full reports whether free space was below the floor, or the store at
// its quota, at the last check.
func (g *diskGuard) full() bool { return g.floorFull() || g.quota.full() }

// floorFull reports whether free space was below the floor at the last
// check.
func (g *diskGuard) floorFull() bool { return g.enabled() && g.isFull.Load() }

// Why a store is full (Status.StoreFullReason).
const (
	FullDiskFloor = "disk_floor" // free disk space below Config.MinFreeBytes
	FullQuota     = "quota"      // the store at Config.MaxStoreBytes
)

// fullReason names why the store is full, "" when it is not; the disk
// floor first, as the harder limit.
func (g *diskGuard) fullReason() string {
	switch {
	case g.floorFull():
		return FullDiskFloor
	case g.quota.full():
		return FullQuota
	}
	return ""
}

// announceFull reports whether the node tells placement it is full. It is
// set as soon as the store is full, and cleared only once the store has
// room again by a margin (roomFraction) below the quota and above the
// floor, so a node at the boundary does not flap in and out of placement.
func (g *diskGuard) announceFull() bool {
	if g.full() {
		g.announced.Store(true)
		return true
	}
	if g.announced.Load() && (!g.quota.hasRoom() || !g.floorHasRoom()) {
		return true
	}
	g.announced.Store(false)
	return false
}

// floorHasRoom reports whether free space is a margin above the floor.
func (g *diskGuard) floorHasRoom() bool {
	return !g.enabled() || g.freeNow.Load() >= g.floor+g.floor/roomFraction
}

// freeBytes is the last estimate of free bytes (0 when not guarded).
func (g *diskGuard) freeBytes() uint64 {
	if g == nil || g.free == nil {
		return 0
	}
	return g.freeNow.Load()
}

// check refreshes the measure when it is stale, when the node is full (to
// see space come back), or when the bytes written since may have taken
// free space below the floor. Before every batch; it checks the quota too.
func (g *diskGuard) check() {
	g.quota.check()
	if g.full() {
		g.announced.Store(true)
	}
	if !g.enabled() {
		return
	}
	g.mu.Lock()
	stale := g.isFull.Load() || time.Since(g.checked) >= diskCheckInterval ||
		g.written+g.floor > g.avail
	g.mu.Unlock()
	if stale {
		g.refresh()
	}
}

// refresh measures free space now and updates the full state.
func (g *diskGuard) refresh() {
	if !g.enabled() {
		return
	}
	avail, err := g.free()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checked = time.Now()
	if err != nil {
		// An unknown measure keeps the last state: a failing statfs
		// must not flap the node between full and not.
		if !g.failing {
			g.log.Warn("free space check failed; the store's full state stays as it was", "err", err)
		}
		g.failing = true
		return
	}
	g.failing = false
	g.avail, g.written = avail, 0
	g.freeNow.Store(avail)
	full := avail < g.floor
	if was := g.isFull.Swap(full); was != full {
		if full {
			g.log.Error("store full: local writes refused, remote states not stored until space returns (delete the ballast file to make room)",
				"free_bytes", avail, "min_free_bytes", g.floor)
		} else {
			g.log.Info("store has room again: writes accepted", "free_bytes", avail, "min_free_bytes", g.floor)
		}
	}
}

// wrote accounts for bytes a batch committed.
func (g *diskGuard) wrote(n int) {
	if !g.enabled() || n <= 0 {
		return
	}
	g.mu.Lock()
	g.written += writeAmp * uint64(n)
	est := uint64(0)
	if g.avail > g.written {
		est = g.avail - g.written
	}
	g.mu.Unlock()
	g.freeNow.Store(est)
}

// errFull is the error a refused local write gets.
func (g *diskGuard) errFull() error {
	if !g.floorFull() && g.quota.full() {
		return g.quota.errFull()
	}
	return fmt.Errorf("%w: %d bytes free, below the floor of %d", ErrStoreFull, g.freeBytes(), g.floor)
}

// ensureBallast creates DataDir/ballast of size bytes when it is absent
// and the disk has room for it above the floor; an existing ballast is
// kept as it is. A ballast that cannot be made is logged, not fatal: the
// floor still protects the store.
func ensureBallast(dataDir string, size int64, floor uint64, free func() (uint64, error), log *slog.Logger) {
	if size <= 0 || free == nil {
		return
	}
	path := filepath.Join(dataDir, ballastName)
	if _, err := os.Stat(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return
	}
	avail, err := free()
	if err != nil || avail < uint64(size)+floor {
		log.Warn("no room for the ballast file; none made", "path", path, "ballast_bytes", size, "free_bytes", avail, "err", err)
		return
	}
	if err := makeBallast(path, size); err != nil {
		_ = os.Remove(path)
		log.Warn("ballast file not made", "path", path, "err", err)
	}
}

// makeBallast writes size bytes to a new file at path and syncs it, so the
// space is really taken (a sparse file would free nothing when deleted).
func makeBallast(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		chunk := min(left, int64(len(buf)))
		if _, err := f.Write(buf[:chunk]); err != nil {
			f.Close()
			return err
		}
		left -= chunk
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startDiskGuard makes the ballast and the guard of the node's store: a
// store on disk is measured by statfs; a memory store or a given Datastore
// is not guarded unless a test set Config.freeSpace. The quota measures
// every store that reports its size (storeSize).
func (n *Node) startDiskGuard() {
	free := n.cfg.freeSpace
	onDisk := !n.cfg.Memory && n.cfg.Datastore == nil
	if free == nil && onDisk {
		free = statfsFree(filepath.Join(n.cfg.DataDir, "store"))
	}
	if onDisk {
		ensureBallast(n.cfg.DataDir, n.cfg.BallastBytes, uint64(n.cfg.MinFreeBytes), free, n.log)
	}
	n.disk = newDiskGuard(uint64(n.cfg.MinFreeBytes), free, n.log)
	n.disk.quota = newStoreQuota(uint64(n.cfg.MaxStoreBytes), storeSize(n.ctx, n.store), compactor(n.ctx, n.store), n.log)
	if n.disk.enabled() || n.disk.quota.measuring() {
		n.wg.Add(1)
		go n.diskLoop()
	}
}

// diskLoop measures free space every diskCheckInterval and the store's
// size every quotaCheckInterval, so status and metrics follow them and a
// full node sees space return while idle; it compacts a store at its
// quota (storeQuota.compactIfDue).
func (n *Node) diskLoop() {
	defer n.wg.Done()
	t := time.NewTicker(min(diskCheckInterval, quotaCheckInterval))
	defer t.Stop()
	for {
		select {
		case <-t.C:
			n.disk.refresh()
			n.disk.quota.refresh()
			n.disk.quota.compactIfDue()
		case <-n.closing:
			return
		}
	}
}
