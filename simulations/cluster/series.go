package cluster

import (
	"context"
	"fmt"
	gosync "sync"
	"time"

	"github.com/gossipmesh/gossipmesh/simulations"
)

// sampleEvery is the period of the time series: two small requests per node
// (GET /v1/status and /metrics), cheap next to the workload.
const sampleEvery = time.Second

// sampleTimeout bounds one node's sample, so a node cut off from the driver
// delays a sample by at most this, not by the client's default.
const sampleTimeout = 800 * time.Millisecond

// startSampler records a simulations.Sample of every node every sampleEvery,
// from now until the returned stop is called (it takes one last sample and
// may be called more than once) or ctx ends.
func (r *run) startSampler(ctx context.Context) (stop func() *simulations.Series) {
	done := make(chan struct{})
	result := make(chan *simulations.Series, 1)
	go func() {
		s := &simulations.Series{Partitions: r.cfg.Partitions}
		last := make([]simulations.NodeSample, len(r.f.members))
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			s.Samples = append(s.Samples, r.sample(ctx, last))
			select {
			case <-done:
				s.Samples = append(s.Samples, r.sample(ctx, last))
				result <- s
				return
			case <-ctx.Done():
				result <- s
				return
			case <-tick.C:
			}
		}
	}()
	var once gosync.Once
	var series *simulations.Series
	return func() *simulations.Series {
		once.Do(func() {
			close(done)
			series = <-result
		})
		return series
	}
}

// sample polls every node at once. A node that does not answer (down,
// paused, cut off from the driver) is not up in the sample, so it counts
// as not converged, as a down node does in the in-process series; its byte
// counts stay at the last ones read, as a stopped node sends nothing. last
// holds those counts and is updated.
func (r *run) sample(ctx context.Context, last []simulations.NodeSample) simulations.Sample {
	smp := simulations.Sample{T: r.since(), Nodes: make([]simulations.NodeSample, len(r.f.members))}
	roots := make([][]string, len(r.f.members))
	var wg gosync.WaitGroup
	for i, m := range r.f.members {
		// The driver knows these will not answer; a paused one would
		// hold the request until the timeout.
		if m.is(stateDown) || m.is(statePaused) {
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, sampleTimeout)
			defer cancel()
			rs, err := m.api.partitionRoots(cctx, r.cfg.Partitions)
			if err != nil {
				return
			}
			roots[i] = rs
			// A kill or restart adds the ending process's counters to
			// the before counts; a read that straddles that is dropped.
			before := [3]uint64{m.sentBefore.Load(), m.gossipBefore.Load(), m.syncBefore.Load()}
			b, err := m.api.bytesSent(cctx)
			if err != nil || before != [3]uint64{m.sentBefore.Load(), m.gossipBefore.Load(), m.syncBefore.Load()} {
				return
			}
			// Counters are cumulative; max keeps a late read of an ended
			// process from showing as a drop.
			l := &last[i]
			l.Bytes = max(l.Bytes, before[0]+b.total)
			l.GossipBytes = max(l.GossipBytes, before[1]+b.gossip)
			l.SyncBytes = max(l.SyncBytes, before[2]+b.sync)
		})
	}
	wg.Wait()
	// Messages stays 0: meshd's /metrics counts bytes, not stream writes.
	copy(smp.Nodes, last)
	smp.MarkDivergent(roots)
	return smp
}

// faultMarks returns the applied fault steps as plot marks, labelled as the
// in-process backend labels its events.
func (r *run) faultMarks() []simulations.FaultMark {
	r.mu.Lock()
	defer r.mu.Unlock()
	marks := make([]simulations.FaultMark, len(r.applied))
	for i, f := range r.applied {
		label := f.Kind.String()
		if f.Kind != FPartition && f.Kind != FHeal {
			label = fmt.Sprintf("%s %d", f.Kind, f.Node)
		}
		marks[i] = simulations.FaultMark{T: f.At, Label: label}
	}
	return marks
}
