package node

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLatencyHistogramBuckets(t *testing.T) {
	var l latency
	for _, d := range []time.Duration{-time.Second, 50 * time.Microsecond, 3 * time.Millisecond, 2 * time.Minute} {
		l.observe(d)
	}
	h := l.snapshot()
	if h.Count != 4 || len(h.Counts) != len(LatencyBuckets) {
		t.Fatalf("snapshot %+v", h)
	}
	at := func(le float64) uint64 {
		for i, b := range h.Buckets {
			if b == le {
				return h.Counts[i]
			}
		}
		t.Fatalf("no bucket %v", le)
		return 0
	}
	// Cumulative: the negative and the 50 µs in the first bucket, the
	// 3 ms from 5 ms on, the 2 min in none (only in Count, as +Inf).
	if at(0.0001) != 2 || at(0.0025) != 2 || at(0.005) != 3 || at(60) != 3 {
		t.Fatalf("cumulative counts %v over %v", h.Counts, h.Buckets)
	}
	if want := (50*time.Microsecond + 3*time.Millisecond + 2*time.Minute).Seconds(); h.SumSeconds != want {
		t.Fatalf("sum %v s, want %v s", h.SumSeconds, want)
	}
}

func TestStatsLatencies(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	link(t, a, b)
	waitFor(t, 10*time.Second, "a and b are members of each other", func() error {
		if len(a.Peers()) == 0 || len(b.Peers()) == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	if err := a.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, []byte("absent")); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if st := a.Stats(); st.PutLatency.Count != 1 || st.GetLatency.Count != 2 {
		t.Fatalf("put latency count %d, get latency count %d; want 1 and 2", st.PutLatency.Count, st.GetLatency.Count)
	}
	waitFor(t, 20*time.Second, "a gossip delta and a sync session on b", func() error {
		st := b.Stats()
		if st.Propagation.Count == 0 || st.SyncDuration.Count == 0 {
			return errors.New("propagation or sync not observed yet")
		}
		return nil
	})
}
