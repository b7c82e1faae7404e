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
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "meshbench-tombstones-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := pebbleds.NewDatastore(dir, pebbleds.WithPebbleWriteOptions(pebble.NoSync))
	if err != nil {
		return err
	}
	defer store.Close()
	clk := &benchClock{}
	const grace = time.Hour
	cfg := benchConfig(dir)
	cfg.Datastore, cfg.Now, cfg.TombstoneGrace = store, clk.now, grace
	n, err := node.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	key := func(i int) []byte { return fmt.Appendf(nil, "key/%012d", i) }
	// Random values, one per key, so compression cannot hide them.
	put := func(i int) error {
		value := make([]byte, *valueBytes)
		rng := rand.New(rand.NewPCG(uint64(i), 2))
		for j := range value {
			value[j] = byte(rng.Uint32())
		}
		return n.Put(ctx, key(i), value)
	}
	del := func(i int) error { return n.Delete(ctx, key(i)) }
	measure(64, *keys, put)
	res := tombstonesResult{Keys: *keys, Rounds: *rounds, Baseline: "the store holding the keys once"}
	if res.StoreBytesLive, res.DiskBytesLive, err = storeBytes(ctx, store); err != nil {
		return err
	}
	start := time.Now()
	for r := range *rounds {
		measure(64, *keys, del)
		measure(64, *keys, put)
		if r%10 == 9 {
			fmt.Printf("round %d of %d, %v\n", r+1, *rounds, time.Since(start).Round(time.Millisecond))
		}
	}
	measure(64, *keys, del)
	if res.TombstonesBefore, err = n.Tombstones(ctx); err != nil {
		return err
	}
	if res.StoreBytesBefore, res.DiskBytesBefore, err = storeBytes(ctx, store); err != nil {
		return err
	}
	clk.offset.Add(int64(2 * grace))
	collectStart := time.Now()
	if _, err := n.CollectTombstones(ctx); err != nil {
		return err
	}
	res.CollectMS = round(float64(time.Since(collectStart).Microseconds()) / 1000)
	if res.TombstonesAfter, err = n.Tombstones(ctx); err != nil {
		return err
	}
	if res.StoreBytesAfter, res.DiskBytesAfter, err = storeBytes(ctx, store); err != nil {
		return err
	}
	res.TombstonesCounted = n.Stats().TombstonesCollected
	res.Ratio = round(float64(res.StoreBytesAfter) / float64(res.StoreBytesLive))
	fmt.Printf("live %d B, before collection %d B (%d tombstones), after %d B (%d tombstones), collected in %.1f ms\n",
		res.StoreBytesLive, res.StoreBytesBefore, res.TombstonesBefore, res.StoreBytesAfter, res.TombstonesAfter, res.CollectMS)
	return printJSON(res)
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
