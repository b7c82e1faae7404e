package httpapi

import (
	"github.com/gossipmesh/gossipmesh/node"
	"github.com/prometheus/client_golang/prometheus"
)

// latencyHistograms describes the node's latency histograms, each named
// with its unit as Prometheus asks.
func latencyHistograms() []histogramDesc {
	h := func(name, help string, get func(node.Stats) node.Histogram) histogramDesc {
		return histogramDesc{prometheus.NewDesc(ns+"_"+name, help, nil, nil), get}
	}
	return []histogramDesc{
		h("put_duration_seconds", "Local writes (put, delete, incr, set and mv operations), from call to durable return; failures excluded.",
			func(s node.Stats) node.Histogram { return s.PutLatency }),
		h("get_duration_seconds", "Local reads, from call to return; not-found included.",
			func(s node.Stats) node.Histogram { return s.GetLatency }),
		h("sync_session_duration_seconds", "Completed anti-entropy sessions, either role.",
			func(s node.Stats) node.Histogram { return s.SyncDuration }),
		h("propagation_delay_seconds", "Gossip deltas: arrival here after the timestamp their writer stamped them with (clock skew between the two shows).",
			func(s node.Stats) node.Histogram { return s.Propagation }),
	}
}

func collectHistograms(ch chan<- prometheus.Metric, hs []histogramDesc, st node.Stats) {
	for _, h := range hs {
		v := h.get(st)
		buckets := make(map[float64]uint64, len(v.Buckets))
		for i, le := range v.Buckets {
			buckets[le] = v.Counts[i]
		}
		ch <- prometheus.MustNewConstHistogram(h.desc, v.Count, v.SumSeconds, buckets)
	}
}
