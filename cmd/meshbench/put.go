package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	ds "github.com/ipfs/go-datastore"
	pebbleds "github.com/ipfs/go-ds-pebble"

	"github.com/gossipmesh/gossipmesh/node"
)

func init() {
	register("put", "local Put throughput vs raw synced go-ds-pebble, same writers, same run", runPut)
}

type putResult struct {
	Writers     int     `json:"writers"`
	Ops         int     `json:"ops"`
	ValueBytes  int     `json:"value_bytes"`
	MeshOpsPerS float64 `json:"mesh_ops_per_s"`
	RawOpsPerS  float64 `json:"raw_ops_per_s"`
	Ratio       float64 `json:"ratio"`
	Baseline    string  `json:"baseline"`
}

func runPut(args []string) error {
	fs := flag.NewFlagSet("put", flag.ContinueOnError)
	writers := fs.Int("writers", 1, "concurrent writers")
	ops := fs.Int("ops", 2000, "total puts per measurement")
	valueBytes := fs.Int("value-bytes", 100, "bytes per value")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the gossipmesh run to `file`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *writers < 1 || *ops < *writers {
		return fmt.Errorf("need --writers >= 1 and --ops >= --writers")
	}
	value := make([]byte, *valueBytes)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	ctx := context.Background()

	// Baseline: go-ds-pebble with pebble.Sync, the same writers and keys.
	rawDir, err := os.MkdirTemp("", "meshbench-raw-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(rawDir)
	raw, err := pebbleds.NewDatastore(rawDir, pebbleds.WithPebbleWriteOptions(pebble.Sync))
	if err != nil {
		return err
	}
	rawOps := measure(*writers, *ops, func(i int) error {
		return raw.Put(ctx, ds.NewKey(fmt.Sprintf("/k/%08d", i)), value)
	})
	raw.Close()

	meshDir, err := os.MkdirTemp("", "meshbench-mesh-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(meshDir)
	cfg := node.DefaultConfig()
	cfg.DataDir = meshDir
	cfg.MDNS = false
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.New(ctx, cfg)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	meshOps := measure(*writers, *ops, func(i int) error {
		return n.Put(ctx, fmt.Appendf(nil, "k%08d", i), value)
	})
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	n.Close()

	fmt.Printf("raw go-ds-pebble (pebble.Sync): %.0f puts/s with %d writers\n", rawOps, *writers)
	fmt.Printf("gossipmesh node.Put:            %.0f puts/s with %d writers\n", meshOps, *writers)
	return printJSON(putResult{
		Writers: *writers, Ops: *ops, ValueBytes: *valueBytes,
		MeshOpsPerS: round(meshOps), RawOpsPerS: round(rawOps), Ratio: round(meshOps / rawOps),
		Baseline: "go-ds-pebble Put with pebble.Sync",
	})
}

// measure runs total calls of put spread over writers goroutines and
// returns calls per second. An error stops the measurement.
func measure(writers, total int, put func(i int) error) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				if err := put(i); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		fmt.Fprintln(os.Stderr, "meshbench: put failed:", err)
		os.Exit(1)
	}
	return float64(total) / time.Since(start).Seconds()
}

func round(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
