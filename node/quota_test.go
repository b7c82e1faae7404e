package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	gosync "sync"
	"testing"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
)

// quotaBound is the most a store under quota may hold: the quota and the
// one state that crossed it.
func quotaBound(cfg Config) uint64 { return uint64(cfg.MaxStoreBytes) + cfg.maxEntryBytes() }

// fillToQuota puts values on n until the quota refuses one, which must
// come within limit writes, and returns the acknowledged ones.
func fillToQuota(t *testing.T, n *Node, prefix string, val []byte, limit int) map[string]string {
	t.Helper()
	acked := map[string]string{}
	for i := range limit {
		k := fmt.Sprintf("%s%05d", prefix, i)
		switch err := n.Put(context.Background(), []byte(k), val); {
		case err == nil:
			acked[k] = string(val)
		case errors.Is(err, ErrStoreFull):
			return acked
		default:
			t.Fatalf("put %s after %d acknowledged: %v, want nil or ErrStoreFull", k, len(acked), err)
		}
	}
	t.Fatalf("%d writes of %d bytes under a quota of %d bytes and none refused", limit, len(val), n.cfg.MaxStoreBytes)
	return nil
}

// storeBytesNow measures n's store directly, not through the quota's
// estimate.
func storeBytesNow(t *testing.T, n *Node) uint64 {
	t.Helper()
	b, err := storeSize(context.Background(), n.store)()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deleteUntilRoom deletes keys of acked on n (each must be accepted at the
// quota) until n has room again, and returns how many it deleted.
func deleteUntilRoom(t *testing.T, n *Node, acked map[string]string) int {
	t.Helper()
	ctx := context.Background()
	keys := make([]string, 0, len(acked))
	for k := range acked {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		st, err := n.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.StoreFull {
			return i
		}
		if err := n.Delete(ctx, []byte(k)); err != nil {
			t.Fatalf("delete of %s at the quota: %v, want it let through", k, err)
		}
		delete(acked, k)
	}
	t.Fatalf("every key deleted and the store still at its quota")
	return 0
}

func TestQuotaRefusesWritesLetsDeletesThroughAndRecovers(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.MaxStoreBytes = 64 << 10
	cfg.MaxValueBytes = 2000 // a tight bound: one state past the quota
	n := startNode(t, cfg)
	acked := fillToQuota(t, n, "k", bytes.Repeat([]byte("v"), 1000), 1000)

	st, err := n.Status(ctx)
	if err != nil || !st.StoreFull || st.StoreFullReason != FullQuota || st.MaxStoreBytes != uint64(cfg.MaxStoreBytes) {
		t.Fatalf("status at the quota: %+v, %v", st, err)
	}
	if real := storeBytesNow(t, n); real > quotaBound(cfg) || st.StoreBytes < real {
		t.Fatalf("store holds %d bytes (status says %d), over the bound %d or above the estimate", real, st.StoreBytes, quotaBound(cfg))
	}
	t.Logf("%d writes acknowledged; store %d bytes, quota %d, bound %d", len(acked), st.StoreBytes, cfg.MaxStoreBytes, quotaBound(cfg))
	for name, op := range map[string]func() error{
		"put":            func() error { return n.Put(ctx, []byte("after"), []byte("v")) },
		"delete nothing": func() error { return n.Delete(ctx, []byte("never-written")) },
		"incr":           func() error { _, err := n.Incr(ctx, []byte("hits"), 1); return err },
		"sadd":           func() error { return n.SAdd(ctx, []byte("set"), []byte("m")) },
		"mv":             func() error { return n.WriteMV(ctx, []byte("mv"), []byte("v")) },
		"restore": func() error {
			return n.MergeStates(ctx, []StateRecord{{Key: []byte("r"), State: mustEncodeLWW(t, n, "r")}})
		},
	} {
		if err := op(); !errors.Is(err, ErrStoreFull) {
			t.Errorf("%s at the quota: %v, want ErrStoreFull", name, err)
		}
	}
	if err := hasAll(ctx, n, acked); err != nil {
		t.Fatalf("read at the quota: %v", err)
	}

	deleted := deleteUntilRoom(t, n, acked)
	if err := n.Put(ctx, []byte("after"), []byte("v")); err != nil {
		t.Fatalf("put after %d deletes made room: %v", deleted, err)
	}
	acked["after"] = "v"
	if err := hasAll(ctx, n, acked); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d deletes made room", deleted)
}

// floodStates returns count register states under prefix, as a member
// that writes them would send them.
func floodStates(prefix string, count, valueBytes int) []StateRecord {
	recs := make([]StateRecord, count)
	now := time.Now().UnixNano()
	for i := range recs {
		r := &crdt.LWW{}
		r.Set(fmt.Appendf(bytes.Repeat([]byte("x"), valueBytes-8), "%08d", i), crdt.Timestamp{Wall: now, Node: 7})
		recs[i] = StateRecord{Key: fmt.Appendf(nil, "%s%06d", prefix, i), State: crdt.Encode(r)}
	}
	return recs
}

// honestClient reads, writes and asks status on n until stop is closed:
// what a client of the node sees during an attack.
type honestClient struct {
	n      *Node
	stop   chan struct{}
	done   chan struct{}
	reads  map[string]string // acknowledged before: every read must find it
	mu     gosync.Mutex
	acked  map[string]string // its writes acknowledged during the attack
	putLat []time.Duration
	getLat []time.Duration
	full   int    // writes refused with ErrStoreFull
	maxUse uint64 // the largest StoreBytes status showed
	err    error  // the first unexpected outcome
}

// honestKeys is how many keys the honest client rewrites.
const honestKeys = 20

func startHonestClient(n *Node, reads map[string]string) *honestClient {
	c := &honestClient{n: n, stop: make(chan struct{}), done: make(chan struct{}), reads: reads, acked: map[string]string{}}
	go c.run()
	return c
}

func (c *honestClient) run() {
	defer close(c.done)
	ctx := context.Background()
	keys := make([]string, 0, len(c.reads))
	for k := range c.reads {
		keys = append(keys, k)
	}
	for i := 0; ; i++ {
		select {
		case <-c.stop:
			return
		default:
		}
		k := keys[i%len(keys)]
		start := time.Now()
		v, err := c.n.Get(ctx, []byte(k))
		getLat := time.Since(start)
		if err == nil && string(v) != c.reads[k] {
			err = fmt.Errorf("read %s = %q, want %q", k, v, c.reads[k])
		}
		// It rewrites a few keys: its writes are not what fills the store.
		hk, hv := fmt.Sprintf("honest-during-%02d", i%honestKeys), fmt.Sprint(i)
		start = time.Now()
		perr := c.n.Put(ctx, []byte(hk), []byte(hv))
		putLat := time.Since(start)
		st, serr := c.n.Status(ctx)
		c.mu.Lock()
		c.getLat, c.putLat = append(c.getLat, getLat), append(c.putLat, putLat)
		switch {
		case perr == nil:
			c.acked[hk] = hv
		case errors.Is(perr, ErrStoreFull):
			c.full++
		case c.err == nil:
			c.err = fmt.Errorf("put %s: %w", hk, perr)
		}
		if c.err == nil && (err != nil || serr != nil) {
			c.err = errors.Join(err, serr)
		}
		c.maxUse = max(c.maxUse, st.StoreBytes)
		c.mu.Unlock()
	}
}

// finish stops the client and returns its first unexpected outcome.
func (c *honestClient) finish() error {
	close(c.stop)
	<-c.done
	return c.err
}

// p99 returns the 99th percentile of ds, 0 for none.
func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)*99/100]
}

func TestQuotaBoundsAFloodFromAMember(t *testing.T) {
	ctx := context.Background()
	swarm := GenerateSwarmKey()
	edit := func(c *Config) {
		c.SwarmKey = swarm
		c.MaxValueBytes = 256
		// Only the attack's own sessions run: the figures are its.
		c.SyncInterval = time.Hour
	}
	qcfg := testConfig()
	edit(&qcfg)
	qcfg.MaxStoreBytes = 256 << 10
	q := startNode(t, qcfg)
	acked := writeKeys(t, q, "honest", 50)

	// The attacker is a member: it holds the swarm key and runs the
	// node's own protocols, with 20,000 small states to push.
	mcfg := testConfig()
	edit(&mcfg)
	m := startNode(t, mcfg)
	const flood = 20000
	recs := floodStates("flood-", flood, 200)
	for chunk := range slices.Chunk(recs, 2000) {
		if err := m.MergeStates(ctx, chunk); err != nil {
			t.Fatal(err)
		}
	}
	link(t, q, m)
	client := startHonestClient(q, acked)

	// Anti-entropy: each session offers every state the node lacks.
	start := time.Now()
	sessions := 0
	waitFor(t, 60*time.Second, "anti-entropy flood refused", func() error {
		sessions++
		if err := m.SyncWith(ctx, q.ID()); err != nil {
			return err
		}
		if got := q.Stats().RemoteRefused; got < 3*flood {
			return fmt.Errorf("%d remote states refused", got)
		}
		return nil
	})
	afterSync := q.Stats().RemoteRefused
	// Gossip: every write of the attacker reaches the node as a delta.
	i := 0
	waitFor(t, 30*time.Second, "gossip flood refused", func() error {
		for range 50 {
			i++
			if err := m.Put(ctx, fmt.Appendf(nil, "gossip-%06d", i), []byte("g")); err != nil {
				return err
			}
		}
		if got := q.Stats().RemoteRefused - afterSync; got < 1000 {
			return fmt.Errorf("%d gossiped states refused", got)
		}
		return nil
	})
	elapsed := time.Since(start)
	if err := client.finish(); err != nil {
		t.Fatalf("honest client during the flood: %v", err)
	}

	st, err := q.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	real := storeBytesNow(t, q)
	stored := 0
	for k, err := range q.Keys(ctx, []byte("flood-")) {
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.Get(ctx, k); err == nil {
			stored++
		}
	}
	t.Logf("flood of %d states over %d sessions and %d gossiped writes in %v: %d stored, %d refused; store %d bytes (status %d, max seen %d), quota %d, bound %d",
		flood, sessions, i, elapsed.Round(time.Millisecond), stored, q.Stats().RemoteRefused, real, st.StoreBytes, client.maxUse, qcfg.MaxStoreBytes, quotaBound(qcfg))
	t.Logf("honest client: %d reads, %d writes (%d acknowledged, %d refused as full): get p99 %v, put p99 %v",
		len(client.getLat), len(client.putLat), len(client.acked), client.full, p99(client.getLat), p99(client.putLat))
	if real > quotaBound(qcfg) || client.maxUse > quotaBound(qcfg) || st.StoreBytes > quotaBound(qcfg) {
		t.Fatalf("store grew to %d bytes (status %d, max seen %d), over the bound %d", real, st.StoreBytes, client.maxUse, quotaBound(qcfg))
	}
	if !st.StoreFull || st.StoreFullReason != FullQuota || stored == 0 || stored >= flood || client.full < honestKeys {
		t.Fatalf("after the flood: full %v (%q), %d flood states stored, %d honest writes refused", st.StoreFull, st.StoreFullReason, stored, client.full)
	}
	if p, limit := p99(client.putLat), honestP99Limit(); p > limit {
		t.Fatalf("honest put p99 %v during the flood, want under %v", p, limit)
	}
	for _, n := range []*Node{q, m} {
		if s := n.Stats(); s.DeltasInvalid != 0 || s.StoreErrors != 0 {
			t.Fatalf("a store at its quota counted as invalid input or store errors: %+v", s)
		}
	}
	for k, v := range client.acked {
		acked[k] = v
	}
	if err := hasAll(ctx, q, acked); err != nil {
		t.Fatalf("acknowledged write lost: %v", err)
	}

	// Deleting the flood's states makes room: the node writes again.
	floodKeys := map[string]string{}
	for k, err := range q.Keys(ctx, []byte("flood-")) {
		if err != nil {
			t.Fatal(err)
		}
		floodKeys[string(k)] = ""
	}
	// "Not full" is below the quota by any margin, and the other node may
	// still be offering states: delete until the put fits.
	deleted := 0
	for {
		deleted += deleteUntilRoom(t, q, floodKeys)
		err := q.Put(ctx, []byte("honest-after"), []byte("v"))
		if err == nil {
			break
		}
		if !errors.Is(err, ErrStoreFull) || len(floodKeys) == 0 {
			t.Fatalf("put after %d deletes made room: %v", deleted, err)
		}
		for k := range floodKeys { // one more
			if err := q.Delete(ctx, []byte(k)); err != nil {
				t.Fatalf("delete of %s at the quota: %v", k, err)
			}
			delete(floodKeys, k)
			deleted++
			break
		}
	}
	acked["honest-after"] = "v"
	if err := hasAll(ctx, q, acked); err != nil {
		t.Fatalf("acknowledged write lost: %v", err)
	}
}

func TestQuotaOnDiskMeasuresPebbleAndRecoversByCompaction(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.Memory = false
	cfg.DataDir = t.TempDir()
	cfg.MinFreeBytes, cfg.BallastBytes = 0, 0 // the quota alone
	cfg.MaxStoreBytes = 40 << 20
	n, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { n.Close() }()
	val := make([]byte, 64<<10)
	rand.Read(val) // incompressible: pebble compresses its tables
	acked := fillToQuota(t, n, "k", val, 4*int(cfg.MaxStoreBytes)/len(val))
	st, err := n.Status(ctx)
	if err != nil || !st.StoreFull || st.StoreFullReason != FullQuota {
		t.Fatalf("status at the quota: %+v, %v", st, err)
	}
	// Pebble keeps working after the last write (a flush writes the
	// memtable to a table before its log goes, a compaction writes its
	// output before its inputs go), so its size may pass the bound for a
	// while by about a memtable each; what the node wrote may not.
	t.Logf("%d writes of %d bytes acknowledged; store %d bytes, quota %d, bound %d",
		len(acked), len(val), st.StoreBytes, cfg.MaxStoreBytes, quotaBound(cfg))
	if written := uint64(len(acked) * len(val)); written > quotaBound(cfg) {
		t.Fatalf("%d bytes acknowledged under a quota of %d", written, cfg.MaxStoreBytes)
	}
	if st.StoreBytes < uint64(cfg.MaxStoreBytes) || st.StoreBytes > quotaBound(cfg)+2*pebbleMemTableBytes {
		t.Fatalf("store measured at %d bytes, below the quota it is full at or past it by more than pebble's flush and compaction", st.StoreBytes)
	}

	// Deletes are let through; pebble gives their space back when the
	// store at its quota is compacted, and the node writes again.
	deleted, toDelete := 0, len(acked)*3/4
	for k := range acked {
		if deleted == toDelete {
			break
		}
		if err := n.Delete(ctx, []byte(k)); err != nil {
			t.Fatalf("delete at the quota: %v", err)
		}
		delete(acked, k)
		deleted++
	}
	room := uint64(cfg.MaxStoreBytes - cfg.MaxStoreBytes/roomFraction)
	waitFor(t, 10*time.Second, "the deletes compacted away", func() error {
		st, err := n.Status(ctx)
		if err != nil || st.StoreFull || st.StoreBytes >= room {
			return fmt.Errorf("store full %v, %d bytes, not below %d: %v", st.StoreFull, st.StoreBytes, room, err)
		}
		return nil
	})
	if err := n.Put(ctx, []byte("after"), val); err != nil {
		t.Fatalf("put after the deletes were compacted: %v", err)
	}
	acked["after"] = string(val)
	st, _ = n.Status(ctx)
	m := pebbleOf(n.store).Metrics()
	t.Logf("after %d deletes and compaction: store %d bytes; compactions %d, tables %d, wal %d+%d", deleted, st.StoreBytes, m.Compact.Count, m.Table.Local.LiveSize, m.WAL.PhysicalSize, m.WAL.ObsoletePhysicalSize)

	// A restart measures the store again and keeps every write.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err = New(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := hasAll(ctx, n, acked); err != nil {
		t.Fatalf("acknowledged write lost: %v", err)
	}
}

// dirBytes is what the files under dir take, walked.
func dirBytes(t *testing.T, dir string) uint64 {
	t.Helper()
	var n uint64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += uint64(fi.Size())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPebbleMeasureCountsTheLiveLog(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.Memory = false
	cfg.DataDir = t.TempDir()
	cfg.MinFreeBytes, cfg.BallastBytes = 0, 0
	n := startNode(t, cfg)
	val := make([]byte, 64<<10)
	// Less than a memtable: it is all in the live write-ahead log.
	for i := range pebbleMemTableBytes / len(val) / 2 {
		rand.Read(val)
		if err := n.Put(ctx, fmt.Appendf(nil, "k%d", i), val); err != nil {
			t.Fatal(err)
		}
	}
	measured, onDisk := storeBytesNow(t, n), dirBytes(t, filepath.Join(cfg.DataDir, "store"))
	t.Logf("measured %d bytes, %d on disk", measured, onDisk)
	if measured < onDisk-onDisk/10 || measured > onDisk+onDisk/10 {
		t.Fatalf("pebble measured at %d bytes, %d on disk", measured, onDisk)
	}
}
