package node

import (
	"context"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/gossipmesh/gossipmesh/sync/merkle"
)

// counters are the node's running totals, read by Stats.
type counters struct {
	puts, gets                         atomic.Uint64
	deltasIn, deltasOut, deltasInvalid atomic.Uint64
	deltasDropped, keysMerged          atomic.Uint64
	syncSessions, syncFailures         atomic.Uint64
	syncBytesSent, syncBytesReceived   atomic.Uint64
	storeErrors, placementChanges      atomic.Uint64
	tombstonesCollected                atomic.Uint64
	lastInvalidLog                     atomic.Int64

	putLatency, getLatency latency // local writes and reads, start to return
	syncDuration           latency // anti-entropy sessions that completed
	propagation            latency // a gossip delta's arrival after its stamp
}

// Stats are cumulative counters since the node started.
type Stats struct {
	Puts, Gets    uint64
	DeltasIn      uint64 // valid deltas received by gossip
	DeltasOut     uint64 // deltas published
	DeltasInvalid uint64 // gossip or sync input refused by validation
	DeltasDropped uint64 // deltas not published (queue full); anti-entropy repairs them
	SyncSessions  uint64 // anti-entropy sessions completed, both roles
	SyncFailures  uint64
	KeysRepaired  uint64 // keys changed by a remote state (gossip or sync)
	StoreErrors   uint64
	// RemoteRefused counts remote states (gossip, anti-entropy) not
	// stored because the store was full; anti-entropy brings them later.
	RemoteRefused uint64
	// TombstonesCollected counts register tombstones deleted after their
	// grace, by the sweep or on arrival from a slower peer's session.
	TombstonesCollected uint64
	BytesSent           map[string]uint64 // per libp2p protocol: gossip, anti-entropy, handoff, identify
	BytesReceived       map[string]uint64

	// Latency histograms (LatencyBuckets, in seconds), measured on
	// Config.Now. PutLatency: a local write (put, delete, incr, set and
	// mv operations) from call to return, failures excluded. GetLatency:
	// a local read, not-found included. SyncDuration: a completed
	// anti-entropy session, either role. Propagation: a gossip delta's
	// arrival here after the stamp its writer gave it (writer's clock
	// against ours; skew shows, a negative gap counts as 0).
	PutLatency, GetLatency, SyncDuration, Propagation Histogram
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	s := &n.stats
	out := Stats{
		Puts: s.puts.Load(), Gets: s.gets.Load(),
		DeltasIn: s.deltasIn.Load(), DeltasOut: s.deltasOut.Load(),
		DeltasInvalid: s.deltasInvalid.Load(), DeltasDropped: s.deltasDropped.Load(),
		SyncSessions: s.syncSessions.Load(), SyncFailures: s.syncFailures.Load(),
		KeysRepaired: s.keysMerged.Load(), StoreErrors: s.storeErrors.Load(),
		TombstonesCollected: s.tombstonesCollected.Load(),
		RemoteRefused:       n.disk.refused.Load(),
		BytesSent:           map[string]uint64{},
		BytesReceived:       map[string]uint64{},
		PutLatency:          s.putLatency.snapshot(), GetLatency: s.getLatency.snapshot(),
		SyncDuration: s.syncDuration.snapshot(), Propagation: s.propagation.snapshot(),
	}
	if n.bandwidth != nil {
		// Stream bytes by protocol as libp2p counted them: gossip
		// (GossipSub's /meshsub), anti-entropy, hinted handoff, identify.
		for proto, st := range n.bandwidth.GetBandwidthByProtocol() {
			if proto == "" {
				continue
			}
			out.BytesSent[string(proto)] = uint64(st.TotalOut)
			out.BytesReceived[string(proto)] = uint64(st.TotalIn)
		}
	}
	// Anti-entropy payload as the node framed it, also when the host
	// was given in Config and libp2p's counter is not ours.
	out.BytesSent[string(syncProtocol)] = max(out.BytesSent[string(syncProtocol)], s.syncBytesSent.Load())
	out.BytesReceived[string(syncProtocol)] = max(out.BytesReceived[string(syncProtocol)], s.syncBytesReceived.Load())
	return out
}

// Status reports, per held partition, the Merkle root, key count and how
// many peers last reported the same root.
func (n *Node) Status(ctx context.Context) (Status, error) {
	st := Status{PeerID: n.host.ID(), Mesh: n.cfg.Mesh, Peers: len(n.members.list()),
		StoreFull: n.disk.full(), StoreFullReason: n.disk.fullReason(), FreeBytes: n.disk.freeBytes(),
		StoreBytes: n.disk.quota.usedBytes(), MaxStoreBytes: n.disk.quota.limit,
		AnnouncedFull: n.selfFull.Load() != nil}
	err := n.do(ctx, func(*txn) error {
		for _, p := range n.storedPartitions() {
			t := n.trees[p]
			st.Partitions = append(st.Partitions, PartitionStatus{Partition: p, Root: t.Root(), Keys: t.Len(), Held: n.holds(p)})
			st.Keys += t.Len()
		}
		return nil
	})
	if err != nil {
		return Status{}, err
	}
	if n.cfg.Replication > 0 {
		err = scanPrefix(ctx, n.store, hintPrefix, func(_, _ []byte) error { st.Hints++; return nil })
		if err != nil {
			return Status{}, err
		}
	}
	pl := n.place()
	self := n.host.ID()
	for i := range st.Partitions {
		ps := &st.Partitions[i]
		ps.PeersAgreeing = n.members.agreeing(ps.Partition, ps.Root, n.members.storing(ps.Partition))
		if pl != nil {
			ps.Holders = pl.holders[ps.Partition]
			others := slices.DeleteFunc(slices.Clone(ps.Holders), func(id peer.ID) bool { return id == self })
			ps.HoldersAgree = n.members.agreeing(ps.Partition, ps.Root, others) == len(others)
		}
	}
	return st, nil
}

// Peers lists the live members of this mesh, sorted by peer ID: the peers
// that passed the mesh handshake or sent a heartbeat and have not been
// silent for DeadAfter. A member is listed whether or not a connection to
// it is open at this moment (a suspected member is still live).
func (n *Node) Peers() []PeerInfo {
	ids := n.members.list()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := make([]PeerInfo, 0, len(ids))
	for _, id := range ids {
		out = append(out, PeerInfo{ID: id, Addrs: n.host.Peerstore().Addrs(id)})
	}
	return out
}

// roots returns the Merkle root of every partition. Event loop only.
func (n *Node) roots() []merkle.Hash {
	out := make([]merkle.Hash, len(n.trees))
	for p, t := range n.trees {
		out[p] = t.Root()
	}
	return out
}
