package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	pebbleds "github.com/ipfs/go-ds-pebble"

	"github.com/gossipmesh/gossipmesh/node"
)

func init() {
	register("tombstones", "store size after rounds of delete and re-write, then deleting everything and collecting, vs the live store", runTombstones)
}

type tombstonesResult struct {
	Keys              int     `json:"keys"`
	Rounds            int     `json:"rounds"`
	StoreBytesLive    int64   `json:"store_bytes_live"`
	StoreBytesBefore  int64   `json:"store_bytes_before_gc"`
	StoreBytesAfter   int64   `json:"store_bytes_after_gc"`
	TombstonesBefore  int     `json:"tombstones_before"`
	TombstonesAfter   int     `json:"tombstones_after"`
	CollectMS         float64 `json:"collect_ms"`
	Ratio             float64 `json:"ratio"` // store_bytes_after_gc / store_bytes_live
	Baseline          string  `json:"baseline"`
	TombstonesCounted uint64  `json:"tombstones_collected"`
	// The same three sizes on disk, with the log files pebble keeps
	// for reuse (a fixed pool, whatever was deleted).
	DiskBytesLive   int64 `json:"disk_bytes_live"`
	DiskBytesBefore int64 `json:"disk_bytes_before_gc"`
	DiskBytesAfter  int64 `json:"disk_bytes_after_gc"`
}

// benchClock is the node's physical clock, moved past the grace at once
// instead of waiting for it.
type benchClock struct{ offset atomic.Int64 }

func (c *benchClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func runTombstones(args []string) error {
	fs := flag.NewFlagSet("tombstones", flag.ContinueOnError)
	keys := fs.Int("keys", 10_000, "keys written")
	rounds := fs.Int("rounds", 100, "rounds of delete and re-write of every key")
	valueBytes := fs.Int("value-bytes", 100, "bytes per value")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := newTombBench(*valueBytes)
	if err != nil {
		return err
	}
	defer b.close()
	res, err := b.run(context.Background(), *keys, *rounds)
	if err != nil {
		return err
	}
	fmt.Printf("live %d B, before collection %d B (%d tombstones), after %d B (%d tombstones), collected in %.1f ms\n",
		res.StoreBytesLive, res.StoreBytesBefore, res.TombstonesBefore, res.StoreBytesAfter, res.TombstonesAfter, res.CollectMS)
	return printJSON(res)
}

// tombBench is one node on its own pebble store, on a clock the benchmark
// moves past the grace.
type tombBench struct {
	dir        string
	store      *pebbleds.Datastore
	n          *node.Node
	clk        *benchClock
	valueBytes int
}

const tombGrace = time.Hour

func newTombBench(valueBytes int) (*tombBench, error) {
	dir, err := os.MkdirTemp("", "meshbench-tombstones-")
	if err != nil {
		return nil, err
	}
	b := &tombBench{dir: dir, clk: &benchClock{}, valueBytes: valueBytes}
	if b.store, err = pebbleds.NewDatastore(dir, pebbleds.WithPebbleWriteOptions(pebble.NoSync)); err != nil {
		b.close()
		return nil, err
	}
	cfg := benchConfig(dir)
	cfg.Datastore, cfg.Now, cfg.TombstoneGrace = b.store, b.clk.now, tombGrace
	if b.n, err = node.New(context.Background(), cfg); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *tombBench) close() {
	if b.n != nil {
		b.n.Close()
	}
	if b.store != nil {
		b.store.Close()
	}
	os.RemoveAll(b.dir)
}

func tombKey(i int) []byte { return fmt.Appendf(nil, "key/%012d", i) }

// put writes key i with a random value of its own, so compression cannot
// hide the values.
func (b *tombBench) put(ctx context.Context) func(int) error {
	return func(i int) error {
		value := make([]byte, b.valueBytes)
		rng := rand.New(rand.NewPCG(uint64(i), 2))
		for j := range value {
			value[j] = byte(rng.Uint32())
		}
		return b.n.Put(ctx, tombKey(i), value)
	}
}

func (b *tombBench) run(ctx context.Context, keys, rounds int) (tombstonesResult, error) {
	res := tombstonesResult{Keys: keys, Rounds: rounds, Baseline: "the store holding the keys once"}
	put, del := b.put(ctx), func(i int) error { return b.n.Delete(ctx, tombKey(i)) }
	measure(64, keys, put)
	var err error
	if res.StoreBytesLive, res.DiskBytesLive, err = storeBytes(ctx, b.store); err != nil {
		return res, err
	}
	start := time.Now()
	for r := range rounds {
		measure(64, keys, del)
		measure(64, keys, put)
		if r%10 == 9 {
			fmt.Printf("round %d of %d, %v\n", r+1, rounds, time.Since(start).Round(time.Millisecond))
		}
	}
	measure(64, keys, del)
	if res.TombstonesBefore, err = b.n.Tombstones(ctx); err != nil {
		return res, err
	}
	if res.StoreBytesBefore, res.DiskBytesBefore, err = storeBytes(ctx, b.store); err != nil {
		return res, err
	}
	if err := b.collect(ctx, &res); err != nil {
		return res, err
	}
	res.Ratio = round(float64(res.StoreBytesAfter) / float64(res.StoreBytesLive))
	return res, nil
}

// collect moves the clock past the grace, collects and measures.
func (b *tombBench) collect(ctx context.Context, res *tombstonesResult) error {
	b.clk.offset.Add(int64(2 * tombGrace))
	start := time.Now()
	if _, err := b.n.CollectTombstones(ctx); err != nil {
		return err
	}
	res.CollectMS = round(float64(time.Since(start).Microseconds()) / 1000)
	var err error
	if res.TombstonesAfter, err = b.n.Tombstones(ctx); err != nil {
		return err
	}
	res.TombstonesCounted = b.n.Stats().TombstonesCollected
	res.StoreBytesAfter, res.DiskBytesAfter, err = storeBytes(ctx, b.store)
	return err
}

// storeBytes flushes and compacts the whole store, then returns the bytes
// it holds (its tables and the live part of its log) and the bytes it
// takes on disk, which add the log files pebble keeps for reuse.
func storeBytes(ctx context.Context, store *pebbleds.Datastore) (held, disk int64, err error) {
	if err := store.DB.Flush(); err != nil {
		return 0, 0, err
	}
	if err := store.DB.Compact(ctx, []byte{0}, []byte{0xff, 0xff, 0xff, 0xff}, true); err != nil {
		return 0, 0, err
	}
	m := store.DB.Metrics()
	return m.Total().TablesSize + int64(m.WAL.Size), int64(m.DiskSpaceUsage()), nil
}
