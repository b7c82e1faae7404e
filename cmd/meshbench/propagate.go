package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gossipmesh/gossipmesh/node"
)

func init() {
	register("propagate", "publish-to-applied latency across loopback nodes vs raw GossipSub on the same hosts", runPropagate)
}

type propagateResult struct {
	Nodes          int     `json:"nodes"`
	Keys           int     `json:"keys"`
	Degree         int     `json:"degree"`
	Samples        int     `json:"samples"`
	MeshP50MS      float64 `json:"mesh_p50_ms"`
	MeshP99MS      float64 `json:"mesh_p99_ms"`
	RawP50MS       float64 `json:"raw_p50_ms"`
	RawP99MS       float64 `json:"raw_p99_ms"`
	Ratio          float64 `json:"ratio"` // mesh p99 / raw p99
	AllKeysAllMS   float64 `json:"all_keys_all_nodes_ms"`
	Baseline       string  `json:"baseline"`
	BytesSyncTotal uint64  `json:"sync_bytes_total"`
	// GossipSub bytes sent by all nodes: over the whole run (the raw
	// baseline's messages too), and while the keys were written and spread.
	BytesGossipTotal uint64 `json:"gossip_bytes_total"`
	BytesGossipKeys  uint64 `json:"gossip_bytes_keys"`
	BytesSyncKeys    uint64 `json:"sync_bytes_keys"`
}

// Protocol prefixes of the bytes propagate reports.
const (
	gossipProtocols = "/meshsub/"
	syncProtocols   = "/gossipmesh/sync/"
)

// meterSettle is how long libp2p's per-protocol byte meters take to show
// what was sent: they are swept once a second.
const meterSettle = 1500 * time.Millisecond

// bytesSent sums what the cluster's nodes sent on protocols with prefix,
// as last swept into libp2p's meters (see meterSettle).
func bytesSent(c *cluster, prefix string) uint64 {
	var total uint64
	for _, n := range c.nodes {
		for proto, b := range n.Stats().BytesSent {
			if strings.HasPrefix(proto, prefix) {
				total += b
			}
		}
	}
	return total
}

func runPropagate(args []string) error {
	fs := flag.NewFlagSet("propagate", flag.ContinueOnError)
	nodes := fs.Int("nodes", 10, "loopback nodes")
	keys := fs.Int("keys", 1000, "keys for the all-nodes-hold-all-keys measurement")
	samples := fs.Int("samples", 400, "single writes timed for the latency percentiles")
	rate := fs.Int("rate", 200, "single writes per second during the latency measurement")
	degree := fs.Int("degree", 4, "random connections per node")
	seed := fs.Uint64("seed", 1, "random seed for the topology")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(*seed, 0))
	c, err := startCluster(ctx, *nodes, *degree, rng)
	if err != nil {
		return err
	}
	defer c.close()
	fmt.Printf("%d nodes up, %d random connections each (seed %d)\n", *nodes, *degree, *seed)
	// Let GossipSub build its meshes before timing anything.
	time.Sleep(3 * time.Second)

	raw, err := rawGossipLatency(ctx, c, *samples, *rate)
	if err != nil {
		return err
	}
	mesh, err := meshLatency(ctx, c, *samples, *rate)
	if err != nil {
		return err
	}
	time.Sleep(meterSettle)
	gossip0, sync0 := bytesSent(c, gossipProtocols), bytesSent(c, syncProtocols)
	all, err := allKeysAllNodes(ctx, c, *keys)
	if err != nil {
		return err
	}
	time.Sleep(meterSettle)
	res := propagateResult{
		Nodes: *nodes, Keys: *keys, Degree: *degree, Samples: len(mesh),
		MeshP50MS: ms(pct(mesh, 50)), MeshP99MS: ms(pct(mesh, 99)),
		RawP50MS: ms(pct(raw, 50)), RawP99MS: ms(pct(raw, 99)),
		AllKeysAllMS: ms(all),
		Baseline:     "raw GossipSub, 100-byte messages, same hosts and topology",
	}
	res.Ratio = round(res.MeshP99MS / res.RawP99MS)
	res.BytesSyncTotal, res.BytesGossipTotal = bytesSent(c, syncProtocols), bytesSent(c, gossipProtocols)
	res.BytesSyncKeys, res.BytesGossipKeys = res.BytesSyncTotal-sync0, res.BytesGossipTotal-gossip0
	fmt.Printf("raw gossipsub: p50 %.2f ms, p99 %.2f ms\n", res.RawP50MS, res.RawP99MS)
	fmt.Printf("mesh put->applied: p50 %.2f ms, p99 %.2f ms (%.2fx raw p99)\n", res.MeshP50MS, res.MeshP99MS, res.Ratio)
	fmt.Printf("%d keys written as fast as possible on one node, held by all %d nodes after %.0f ms\n", *keys, *nodes, res.AllKeysAllMS)
	fmt.Printf("bytes sent: gossip %d (%d for the keys), anti-entropy %d (%d for the keys)\n",
		res.BytesGossipTotal, res.BytesGossipKeys, res.BytesSyncTotal, res.BytesSyncKeys)
	return printJSON(res)
}

// rawGossipLatency publishes 100-byte messages on a plain topic of the
// nodes' own GossipSub instances and times delivery to every other node.
func rawGossipLatency(ctx context.Context, c *cluster, samples, rate int) ([]time.Duration, error) {
	const topic = "/meshbench/raw"
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first, err := c.nodes[0].PubSub().Join(topic)
	if err != nil {
		return nil, err
	}
	defer first.Close()
	for _, n := range c.nodes[1:] {
		t, err := n.PubSub().Join(topic)
		if err != nil {
			return nil, err
		}
		sub, err := t.Subscribe()
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer t.Close()
			defer sub.Cancel()
			for {
				m, err := sub.Next(cctx)
				if err != nil {
					return
				}
				sent := time.Unix(0, int64(binary.BigEndian.Uint64(m.Data)))
				mu.Lock()
				lat = append(lat, time.Since(sent))
				mu.Unlock()
			}
		}()
	}
	time.Sleep(2 * time.Second) // the raw topic's mesh forms at the next heartbeats
	msg := make([]byte, 100)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	for range samples {
		<-tick.C
		binary.BigEndian.PutUint64(msg, uint64(time.Now().UnixNano()))
		if err := first.Publish(ctx, msg); err != nil {
			return nil, err
		}
	}
	tick.Stop()
	want := samples * (len(c.nodes) - 1)
	waitUntil(5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(lat) >= want })
	cancel()
	wg.Wait()
	return lat, nil
}

// meshLatency times single Puts on node 0 from acknowledgement to the
// watch event on every other node.
func meshLatency(ctx context.Context, c *cluster, samples, rate int) ([]time.Duration, error) {
	var mu sync.Mutex
	sentAt := map[string]time.Time{}
	var lat []time.Duration
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, n := range c.nodes[1:] {
		ev, err := n.Watch(cctx, []byte("lat/"))
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range ev {
				now := time.Now()
				mu.Lock()
				if t, ok := sentAt[string(e.Key)]; ok {
					lat = append(lat, now.Sub(t))
				}
				mu.Unlock()
			}
		}()
	}
	value := make([]byte, 100)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	for i := range samples {
		<-tick.C
		key := fmt.Sprintf("lat/%06d", i)
		mu.Lock()
		sentAt[key] = time.Now()
		mu.Unlock()
		if err := c.nodes[0].Put(ctx, []byte(key), value); err != nil {
			return nil, err
		}
	}
	tick.Stop()
	want := samples * (len(c.nodes) - 1)
	waitUntil(10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(lat) >= want })
	cancel()
	wg.Wait()
	return lat, nil
}

// allKeysAllNodes writes keys on node 0 with 16 writers as fast as it can
// and returns the time from the first write until every node holds them all.
func allKeysAllNodes(ctx context.Context, c *cluster, keys int) (time.Duration, error) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	done := make(chan time.Time, len(c.nodes))
	for _, n := range c.nodes[1:] {
		ev, err := n.Watch(cctx, []byte("all/"))
		if err != nil {
			return 0, err
		}
		wg.Add(1)
		go func(n *node.Node) {
			defer wg.Done()
			seen := map[string]bool{}
			for e := range ev {
				seen[string(e.Key)] = true
				if len(seen) == keys {
					done <- time.Now()
					return
				}
			}
		}(n)
	}
	value := make([]byte, 100)
	start := time.Now()
	measure(16, keys, func(i int) error {
		return c.nodes[0].Put(ctx, fmt.Appendf(nil, "all/%06d", i), value)
	})
	var last time.Time
	timeout := time.After(60 * time.Second)
	for range len(c.nodes) - 1 {
		select {
		case t := <-done:
			last = t
		case <-timeout:
			return 0, fmt.Errorf("not every node held all %d keys within 60 s", keys)
		}
	}
	cancel()
	wg.Wait()
	return last.Sub(start), nil
}

func waitUntil(limit time.Duration, cond func() bool) {
	deadline := time.Now().Add(limit)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return round(float64(d) / float64(time.Millisecond)) }
