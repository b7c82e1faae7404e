package simulations

import (
	"context"
	"encoding/csv"
	"io"
	"strconv"
	"time"
)

// NodeSample is one node's state at one sampling instant.
type NodeSample struct {
	Up          bool
	Divergent   int    // partitions whose root differs from the most common root among up nodes
	Messages    uint64 // cumulative stream writes
	Bytes       uint64 // cumulative stream bytes written, every protocol
	GossipBytes uint64
	SyncBytes   uint64
}

// Sample is the mesh at one instant.
type Sample struct {
	T     time.Duration // from the start of the workload
	Nodes []NodeSample
}

// Converged is the fraction of all nodes that are up and hold the most
// common root of every partition.
func (s Sample) Converged() float64 {
	ok := 0
	for _, n := range s.Nodes {
		if n.Up && n.Divergent == 0 {
			ok++
		}
	}
	return float64(ok) / float64(len(s.Nodes))
}

// Series is a run's time series.
type Series struct {
	Partitions int
	Samples    []Sample
	Faults     []FaultMark // when each fault was applied
}

// FaultMark is one applied fault, for plots.
type FaultMark struct {
	T     time.Duration
	Label string
}

// sampler records a Sample every period until stopped.
type sampler struct {
	c      *cluster
	every  time.Duration
	t0     time.Time
	done   chan struct{}
	result chan *Series
}

func newSampler(c *cluster, every time.Duration, t0 time.Time) *sampler {
	return &sampler{c: c, every: every, t0: t0, done: make(chan struct{}), result: make(chan *Series, 1)}
}

func (s *sampler) loop(ctx context.Context) {
	series := &Series{Partitions: s.c.cfg.Partitions}
	tick := time.NewTicker(s.every)
	defer tick.Stop()
	for {
		series.Samples = append(series.Samples, s.sample(ctx))
		select {
		case <-s.done:
			series.Samples = append(series.Samples, s.sample(ctx))
			s.result <- series
			return
		case <-ctx.Done():
			s.result <- series
			return
		case <-tick.C:
		}
	}
}

// stop ends sampling after one last sample and returns the series.
func (s *sampler) stop() *Series {
	close(s.done)
	return <-s.result
}

func (s *sampler) sample(ctx context.Context) Sample {
	smp := Sample{T: time.Since(s.t0), Nodes: make([]NodeSample, len(s.c.nodes))}
	roots := make([][]string, len(s.c.nodes))
	for i, sn := range s.c.nodes {
		ns := &smp.Nodes[i]
		ns.Messages, ns.Bytes = sn.meter.total()
		ns.GossipBytes = sn.meter.bytes[classGossip].Load()
		ns.SyncBytes = sn.meter.bytes[classSync].Load()
		n := sn.current()
		if n == nil {
			continue
		}
		st, err := n.Status(ctx)
		if err != nil {
			continue
		}
		roots[i] = make([]string, s.c.cfg.Partitions)
		for _, p := range st.Partitions {
			if int(p.Partition) < len(roots[i]) {
				roots[i][p.Partition] = string(p.Root[:])
			}
		}
	}
	smp.MarkDivergent(roots)
	return smp
}

// MarkDivergent sets each node's Up and Divergent from roots: roots[i]
// holds node i's root of every partition, or is nil if node i gave no
// answer (down, paused, unreachable); such a node counts as not converged.
// A partition's reference root is the most common one among the nodes that
// answered (ties broken by the smaller root), so both backends count
// divergence the same way.
func (s *Sample) MarkDivergent(roots [][]string) {
	parts := 0
	for i, r := range roots {
		s.Nodes[i].Up = r != nil
		parts = max(parts, len(r))
	}
	for p := range parts {
		counts := map[string]int{}
		mode, best := "", 0
		for i := range roots {
			if roots[i] == nil {
				continue
			}
			r := roots[i][p]
			counts[r]++
			if counts[r] > best || counts[r] == best && r < mode {
				mode, best = r, counts[r]
			}
		}
		for i := range roots {
			if roots[i] != nil && roots[i][p] != mode {
				s.Nodes[i].Divergent++
			}
		}
	}
}

// WriteCSV writes the series in long form, one row per node per sample:
// t_ms, node, up, divergent_partitions, messages, bytes_sent, gossip_bytes,
// sync_bytes, converged_fraction (the same on every row of a sample).
func (s *Series) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"t_ms", "node", "up", "divergent_partitions", "messages", "bytes_sent", "gossip_bytes", "sync_bytes", "converged_fraction"}); err != nil {
		return err
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	for _, smp := range s.Samples {
		frac := strconv.FormatFloat(smp.Converged(), 'f', 4, 64)
		t := strconv.FormatInt(smp.T.Milliseconds(), 10)
		for i, n := range smp.Nodes {
			row := []string{t, strconv.Itoa(i), strconv.FormatBool(n.Up), strconv.Itoa(n.Divergent),
				u(n.Messages), u(n.Bytes), u(n.GossipBytes), u(n.SyncBytes), frac}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
