package httpapi

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (s *server) metricsHandler() http.Handler {
	own := prometheus.NewRegistry()
	own.MustRegister(newCollector(s.b))
	var g prometheus.Gatherers
	if s.opts.Registry != nil {
		g = prometheus.Gatherers{s.opts.Registry, own}
	} else {
		own.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		g = prometheus.Gatherers{own}
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// collector reads Backend.Stats and Backend.Status at scrape time. Reading
// the node's own counters, rather than mirroring them into client_golang
// counters, keeps the node package free of Prometheus and the figures exact.
type collector struct {
	b Backend

	counters     []counterDesc
	bytesSent    *prometheus.Desc
	bytesRecv    *prometheus.Desc
	keys         *prometheus.Desc
	peers        *prometheus.Desc
	partKeys     *prometheus.Desc
	partAgreeing *prometheus.Desc
	partHolders  *prometheus.Desc
	partAgree    *prometheus.Desc
	hints        *prometheus.Desc
	storeFull    *prometheus.Desc
	fullReason   *prometheus.Desc
	freeBytes    *prometheus.Desc
	storeBytes   *prometheus.Desc
	maxStore     *prometheus.Desc
	announced    *prometheus.Desc
	up           *prometheus.Desc
	histograms   []histogramDesc
}

// histogramDesc is one of the node's latency histograms (node.Stats).
type histogramDesc struct {
	desc *prometheus.Desc
	get  func(st node.Stats) node.Histogram
}

type counterDesc struct {
	desc *prometheus.Desc
	get  func(st statsView) uint64
}

// statsView is the node.Stats fields the collector exports, by name; kept
// as a func table so adding a counter is one line.
type statsView = struct {
	Puts, Gets, DeltasIn, DeltasOut, DeltasInvalid, DeltasDropped uint64
	SyncSessions, SyncFailures, KeysRepaired, StoreErrors         uint64
	RemoteRefused                                                 uint64
}

const ns = "gossipmesh"

func newCollector(b Backend) *collector {
	c := &collector{b: b}
	add := func(name, help string, get func(statsView) uint64) {
		c.counters = append(c.counters, counterDesc{prometheus.NewDesc(ns+"_"+name, help, nil, nil), get})
	}
	add("puts_total", "Local writes (put, delete, incr, set and mv operations).", func(s statsView) uint64 { return s.Puts })
	add("gets_total", "Local reads.", func(s statsView) uint64 { return s.Gets })
	add("deltas_in_total", "Valid gossip deltas received.", func(s statsView) uint64 { return s.DeltasIn })
	add("deltas_out_total", "Gossip deltas published.", func(s statsView) uint64 { return s.DeltasOut })
	add("deltas_invalid_total", "Gossip or sync input refused by validation.", func(s statsView) uint64 { return s.DeltasInvalid })
	add("deltas_dropped_total", "Deltas not published because the queue was full (anti-entropy repairs them).", func(s statsView) uint64 { return s.DeltasDropped })
	add("sync_sessions_total", "Anti-entropy sessions completed, both roles.", func(s statsView) uint64 { return s.SyncSessions })
	add("sync_failures_total", "Anti-entropy sessions that failed.", func(s statsView) uint64 { return s.SyncFailures })
	add("keys_repaired_total", "Keys changed by a remote state (gossip or sync).", func(s statsView) uint64 { return s.KeysRepaired })
	add("store_errors_total", "Local datastore failures.", func(s statsView) uint64 { return s.StoreErrors })
	add("remote_refused_total", "Remote states not stored because the store was full.", func(s statsView) uint64 { return s.RemoteRefused })
	c.bytesSent = prometheus.NewDesc(ns+"_bytes_sent_total", "Bytes sent, per protocol.", []string{"protocol"}, nil)
	c.bytesRecv = prometheus.NewDesc(ns+"_bytes_received_total", "Bytes received, per protocol.", []string{"protocol"}, nil)
	c.keys = prometheus.NewDesc(ns+"_keys", "Keys held, over all held partitions.", nil, nil)
	c.peers = prometheus.NewDesc(ns+"_peers", "Connected mesh members.", nil, nil)
	c.partKeys = prometheus.NewDesc(ns+"_partition_keys", "Keys held, per partition.", []string{"partition"}, nil)
	c.partAgreeing = prometheus.NewDesc(ns+"_partition_peers_agreeing", "Peers whose last reported root for the partition equals ours.", []string{"partition"}, nil)
	c.partHolders = prometheus.NewDesc(ns+"_partition_holders", "Number of members that hold the partition under placement, as this node computes placement; only with replication R > 0, for the partitions this node stores.", []string{"partition"}, nil)
	c.partAgree = prometheus.NewDesc(ns+"_partition_holders_agree", "1 if every holder of the partition last reported this node's root.", []string{"partition"}, nil)
	c.storeFull = prometheus.NewDesc(ns+"_store_full", "1 while the store's free disk space is below the floor or the store is at its quota (writes refused), else 0.", nil, nil)
	c.fullReason = prometheus.NewDesc(ns+"_store_full_reason", "1 for the reason the store is full (disk_floor or quota), 0 for the other.", []string{"reason"}, nil)
	c.freeBytes = prometheus.NewDesc(ns+"_store_free_bytes", "Free disk space of the store as last measured (0 when not measured).", nil, nil)
	c.storeBytes = prometheus.NewDesc(ns+"_store_bytes", "The store's size as last measured (0 when the store does not report it).", nil, nil)
	c.maxStore = prometheus.NewDesc(ns+"_store_max_bytes", "The store's quota, --max-store-bytes (0: none).", nil, nil)
	c.announced = prometheus.NewDesc(ns+"_store_full_announced", "1 while the node tells placement it is full (given no partition it does not store), else 0.", nil, nil)
	c.hints = prometheus.NewDesc(ns+"_hints", "Writes for partitions this node does not hold, not yet handed off.", nil, nil)
	c.up = prometheus.NewDesc(ns+"_status_up", "1 if the node answered the status query of this scrape.", nil, nil)
	c.histograms = latencyHistograms()
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.counters {
		ch <- d.desc
	}
	for _, d := range []*prometheus.Desc{c.bytesSent, c.bytesRecv, c.keys, c.peers, c.partKeys, c.partAgreeing, c.partHolders, c.partAgree, c.hints, c.storeFull, c.fullReason, c.freeBytes, c.storeBytes, c.maxStore, c.announced, c.up} {
		ch <- d
	}
	for _, h := range c.histograms {
		ch <- h.desc
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.Stats()
	view := statsView{
		Puts: st.Puts, Gets: st.Gets, DeltasIn: st.DeltasIn, DeltasOut: st.DeltasOut,
		DeltasInvalid: st.DeltasInvalid, DeltasDropped: st.DeltasDropped,
		SyncSessions: st.SyncSessions, SyncFailures: st.SyncFailures,
		KeysRepaired: st.KeysRepaired, StoreErrors: st.StoreErrors,
		RemoteRefused: st.RemoteRefused,
	}
	for _, d := range c.counters {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(d.get(view)))
	}
	perProtocol := func(desc *prometheus.Desc, m map[string]uint64) {
		protos := make([]string, 0, len(m))
		for p := range m {
			protos = append(protos, p)
		}
		sort.Strings(protos)
		for _, p := range protos {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(m[p]), p)
		}
	}
	perProtocol(c.bytesSent, st.BytesSent)
	perProtocol(c.bytesRecv, st.BytesReceived)
	collectHistograms(ch, c.histograms, st)

	// Status goes through the node's event loop; a bounded wait keeps a
	// stuck node from hanging the scrape, and status_up says it happened.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	status, err := c.b.Status(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(status.Keys))
	ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(status.Peers))
	ch <- prometheus.MustNewConstMetric(c.hints, prometheus.GaugeValue, float64(status.Hints))
	ch <- prometheus.MustNewConstMetric(c.storeFull, prometheus.GaugeValue, gauge(status.StoreFull))
	for _, reason := range []string{node.FullDiskFloor, node.FullQuota} {
		ch <- prometheus.MustNewConstMetric(c.fullReason, prometheus.GaugeValue, gauge(status.StoreFullReason == reason), reason)
	}
	ch <- prometheus.MustNewConstMetric(c.freeBytes, prometheus.GaugeValue, float64(status.FreeBytes))
	ch <- prometheus.MustNewConstMetric(c.storeBytes, prometheus.GaugeValue, float64(status.StoreBytes))
	ch <- prometheus.MustNewConstMetric(c.maxStore, prometheus.GaugeValue, float64(status.MaxStoreBytes))
	ch <- prometheus.MustNewConstMetric(c.announced, prometheus.GaugeValue, gauge(status.AnnouncedFull))
	for _, p := range status.Partitions {
		part := strconv.FormatUint(uint64(p.Partition), 10)
		ch <- prometheus.MustNewConstMetric(c.partKeys, prometheus.GaugeValue, float64(p.Keys), part)
		ch <- prometheus.MustNewConstMetric(c.partAgreeing, prometheus.GaugeValue, float64(p.PeersAgreeing), part)
		if len(p.Holders) > 0 {
			agree := 0.0
			if p.HoldersAgree {
				agree = 1
			}
			ch <- prometheus.MustNewConstMetric(c.partHolders, prometheus.GaugeValue, float64(len(p.Holders)), part)
			ch <- prometheus.MustNewConstMetric(c.partAgree, prometheus.GaugeValue, agree, part)
		}
	}
}

// gauge is a boolean as a 0/1 gauge value.
func gauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
