package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gossipmesh/gossipmesh/node"
)

func init() {
	register("catchup", "time for a fresh node to reach an equal root with a loaded one, vs the time to load it", runCatchup)
}

type catchupResult struct {
	Keys         int     `json:"keys"`
	ValueBytes   int     `json:"value_bytes"`
	LoadMS       float64 `json:"load_ms"`
	CatchupMS    float64 `json:"catchup_ms"`
	KeysPerS     float64 `json:"keys_per_s"`
	SyncBytes    uint64  `json:"sync_bytes"`
	FullStateMiB float64 `json:"full_state_mib"`
	Ratio        float64 `json:"ratio"` // catch-up time / time to write the same keys locally
	Baseline     string  `json:"baseline"`
}

func runCatchup(args []string) error {
	fs := flag.NewFlagSet("catchup", flag.ContinueOnError)
	keys := fs.Int("keys", 100_000, "keys held by the loaded node")
	valueBytes := fs.Int("value-bytes", 100, "bytes per value")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	c := &cluster{}
	defer c.close()
	// Anti-entropy alone: no gossip, and no periodic rounds that could
	// start before the one we time.
	quiet := func(cfg *node.Config) { cfg.DisableGossip = true; cfg.SyncInterval = time.Hour }
	src, err := c.add(ctx, quiet)
	if err != nil {
		return err
	}
	loadStart := time.Now()
	var stateBytes atomic.Int64
	measure(64, *keys, func(i int) error {
		k := fmt.Appendf(nil, "key/%012d/%019d", i, i) // 32-byte keys
		// Random values, so compression cannot flatter the transfer.
		value := make([]byte, *valueBytes)
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		for j := range value {
			value[j] = byte(rng.Uint32())
		}
		stateBytes.Add(int64(len(k) + len(value)))
		return src.Put(ctx, k, value)
	})
	load := time.Since(loadStart)
	fmt.Printf("loaded %d keys in %v\n", *keys, load.Round(time.Millisecond))

	fresh, err := c.add(ctx, quiet)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := fresh.Connect(ctx, src.Addrs()[0]); err != nil {
		return err
	}
	// Connecting starts a session at once; wait for equal roots.
	want := roots(ctx, src)
	deadline := start.Add(5 * time.Minute)
	for roots(ctx, fresh) != want {
		if time.Now().After(deadline) {
			return fmt.Errorf("fresh node did not catch up within 5 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	// Byte counts are booked when a session ends, just after the roots match.
	for src.Stats().SyncSessions+fresh.Stats().SyncSessions < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	var synced uint64
	for _, n := range []*node.Node{src, fresh} {
		for proto, b := range n.Stats().BytesSent {
			if strings.HasPrefix(proto, "/gossipmesh/sync/") {
				synced += b
			}
		}
	}
	fmt.Printf("fresh node reached an equal root in %v (%.0f keys/s), %d bytes sent both ways\n",
		took.Round(time.Millisecond), float64(*keys)/took.Seconds(), synced)
	return printJSON(catchupResult{
		Keys: *keys, ValueBytes: *valueBytes,
		LoadMS: ms(load), CatchupMS: ms(took), KeysPerS: round(float64(*keys) / took.Seconds()),
		SyncBytes: synced, FullStateMiB: round(float64(stateBytes.Load()) / (1 << 20)),
		Ratio:    round(took.Seconds() / load.Seconds()),
		Baseline: "local Put of the same keys with 64 writers",
	})
}

func roots(ctx context.Context, n *node.Node) string {
	st, err := n.Status(ctx)
	if err != nil {
		return err.Error()
	}
	out := ""
	for _, p := range st.Partitions {
		out += fmt.Sprintf("%x", p.Root)
	}
	return out
}
