package node

import (
	"sync/atomic"
	"time"
)

// LatencyBuckets are the upper bounds, in seconds, of every latency
// histogram in Stats: from 100 µs (a read from the page cache) to a
// minute (an anti-entropy session at SyncTimeout's default).
var LatencyBuckets = [...]float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// Histogram is a snapshot of a latency distribution, shaped as Prometheus
// exposes one: Counts[i] observations took at most Buckets[i] seconds
// (cumulative), Count in all, SumSeconds their total.
type Histogram struct {
	Buckets    []float64 // upper bounds in seconds (LatencyBuckets)
	Counts     []uint64  // cumulative, one per bound
	Count      uint64
	SumSeconds float64
}

// latency records durations into LatencyBuckets, without locks.
type latency struct {
	counts   [len(LatencyBuckets) + 1]atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sumNanos atomic.Uint64
}

// latencyBounds is LatencyBuckets as durations, for observe.
var latencyBounds = func() [len(LatencyBuckets)]time.Duration {
	var out [len(LatencyBuckets)]time.Duration
	for i, s := range LatencyBuckets {
		out[i] = time.Duration(s * float64(time.Second))
	}
	return out
}()

// observe records d; a negative d (clocks apart) counts as 0.
func (l *latency) observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	l.counts[i].Add(1)
	l.sumNanos.Add(uint64(d))
}

// since records the time from start to now.
func (l *latency) since(now func() time.Time, start time.Time) {
	l.observe(now().Sub(start))
}

func (l *latency) snapshot() Histogram {
	h := Histogram{Buckets: LatencyBuckets[:], Counts: make([]uint64, len(LatencyBuckets))}
	for i := range l.counts {
		h.Count += l.counts[i].Load()
		if i < len(h.Counts) {
			h.Counts[i] = h.Count
		}
	}
	h.SumSeconds = time.Duration(l.sumNanos.Load()).Seconds()
	return h
}
