package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/node/retention"
	"github.com/gossipmesh/gossipmesh/sync/merkle"
	ds "github.com/ipfs/go-datastore"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// maxBatch bounds how many requests one event-loop turn folds into a single
// synced commit.
const maxBatch = 512

// maxMerged bounds the records from anti-entropy sessions one event-loop
// turn merges (sessions merge a frame in pieces of at most this many): a
// flood of remote records delays a local write by about one such turn.
const maxMerged = maxBatch / 8

// Node is one member of a mesh: a libp2p host, GossipSub, the anti-entropy
// protocol and a local datastore. Its methods are safe for concurrent use.
type Node struct {
	cfg      Config
	log      *slog.Logger
	meshID   [8]byte
	store    *guardedStore
	ownStore bool
	host     host.Host
	ps       *pubsub.PubSub
	topicsMu gosync.Mutex
	topics   map[uint32]*pubsub.Topic        // by deltaTopic; joined once held
	subs     map[uint32]*pubsub.Subscription // by deltaTopic; absent when not held or gossip is off
	membersT *pubsub.Topic

	// Placement: recomputed by replace (under placeMu) when members change.
	placeMu   gosync.Mutex
	placement atomic.Pointer[placement]
	// selfFull is what this node last announced of its store being full
	// (nil: not full); placement reads it as other members read the
	// heartbeat, so every node computes the same holders.
	selfFull    atomic.Pointer[[]bool]
	bandwidth   *metrics.BandwidthCounter // nil when Config.Host was given
	incarnation uint64
	started     time.Time // by cfg.Now
	gained      gainedPartitions
	retain      retention.Policy
	quar        quarantine

	reqs    chan *request
	merges  chan *request // session merges, weighed by records; see nextBatch
	syncq   chan syncWait
	publish chan outgoing
	closing chan struct{}
	ctx     context.Context // cancelled on Close
	cancel  context.CancelFunc
	wg      gosync.WaitGroup
	closed  atomic.Bool
	leaving atomic.Bool // Leave began: heartbeats stop

	// Owned by the event loop.
	clock *crdt.Clock
	self  crdt.NodeID
	trees []*merkle.Tree

	handoffKick chan struct{}
	syncNow     chan peer.ID
	verifyq     chan peer.ID // candidates to verify; see verify.go
	newcomers   atomic.Int64 // inbound sessions with peers not members; see guardNewcomers
	syncSlots   chan struct{}

	watch   watchers
	members members
	stats   counters
	sec     *security  // gater, invalid-input blocking, per-peer sync cap
	disk    *diskGuard // free-space floor of the store's disk
}

// request is a unit of work for the event loop. apply runs on the loop and
// stages writes; done receives the result after the batch is durable.
type request struct {
	apply  func(tx *txn) error
	done   chan error
	weight int // records it merges from a session (see maxMerged)
}

// New starts a node: it opens the store, rebuilds the Merkle trees, brings up
// the libp2p host, joins GossipSub and connects to the bootstrap peers.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:         cfg,
		started:     cfg.Now(),
		log:         cfg.Logger,
		meshID:      meshID(cfg.Mesh, cfg.Partitions, cfg.Replication),
		reqs:        make(chan *request, 4*maxBatch),
		merges:      make(chan *request, maxBatch),
		syncq:       make(chan syncWait, 64),
		handoffKick: make(chan struct{}, 1),
		// Made here, not when sync starts: the membership loop and the
		// network notifee use them from the moment they start.
		syncNow:   make(chan peer.ID, 64),
		verifyq:   make(chan peer.ID, verifyQueueSize),
		syncSlots: make(chan struct{}, maxConcurrentSyncs),
		publish:   make(chan outgoing, 4096),
		closing:   make(chan struct{}),
		retain:    retention.Policy{Grace: cfg.TombstoneGrace},
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.members.init()
	var err error
	store, own, err := openSealedStore(ctx, &n.cfg)
	if err != nil {
		return nil, err
	}
	n.store, n.ownStore = &guardedStore{Batching: store}, own
	ok := false
	defer func() {
		if !ok {
			n.shutdown()
		}
	}()
	n.startDiskGuard()
	if err := n.loadSessions(ctx); err != nil {
		return nil, err
	}
	if err := indexTombstones(ctx, n.store); err != nil {
		return nil, err
	}
	if err := n.rebuildTrees(ctx); err != nil {
		return nil, err
	}
	var key crypto.PrivKey
	if cfg.Host == nil {
		if key, err = loadIdentity(&n.cfg); err != nil {
			return nil, err
		}
	}
	if err := n.startHost(ctx, key); err != nil {
		return nil, err
	}
	epoch, err := startEpoch(ctx, n.store, n.storedKeys() > 0)
	if err != nil {
		return nil, err
	}
	n.self = actorID(n.host.ID(), epoch)
	// Set only once the epoch has begun: shutdown marks a clean stop then.
	n.clock = crdt.NewClock(n.self, cfg.MaxClockDrift)
	if err := n.startGossip(); err != nil {
		return nil, err
	}
	n.replace() // alone so far: holds what a one-member mesh holds
	if err := n.startMembership(); err != nil {
		return nil, err
	}
	n.wg.Add(3)
	go n.loop()
	go n.syncer()
	go n.collectLoop()
	n.startSync()
	for range verifyWorkers {
		n.wg.Add(1)
		go n.verifyLoop()
	}
	n.host.SetStreamHandler(kvProtocol, n.handleKV)
	n.host.SetStreamHandler(leaveProtocol, n.handleLeave)
	n.wg.Add(1)
	go n.handoffLoop()
	n.kickHandoff() // hints left by a previous run
	if err := n.startDiscovery(ctx); err != nil {
		return nil, err
	}
	ok = true
	n.log.Info("node started", "peer", n.host.ID(), "epoch", epoch, "mesh", cfg.Mesh, "partitions", cfg.Partitions, "replication", cfg.Replication, "addrs", n.Addrs())
	return n, nil
}

// Close stops the node: it leaves the mesh, finishes the batch in flight and
// closes the store. Pending requests get ErrClosed. Peers notice by
// silence (suspected after Config.SuspectAfter); Leave tells them first.
func (n *Node) Close() error {
	if !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	return n.shutdown()
}

func (n *Node) shutdown() error {
	n.closed.Store(true)
	n.cancel()
	close(n.closing)
	var errs []error
	if n.host != nil {
		errs = append(errs, n.host.Close())
	}
	n.wg.Wait()
	n.watch.closeAll()
	if n.store == nil {
		return errors.Join(errs...)
	}
	if n.clock != nil {
		// Every writer has stopped and the last batch is synced.
		errs = append(errs, markClean(context.Background(), n.store))
	}
	n.store.shut() // waits for readers still in the store
	if n.ownStore {
		errs = append(errs, n.store.Batching.Close())
	}
	return errors.Join(errs...)
}

// ID is the node's libp2p peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Addrs are the node's listen addresses, each ending in /p2p/<peer ID>.
func (n *Node) Addrs() []multiaddr.Multiaddr {
	info := peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}
	addrs, _ := peer.AddrInfoToP2pAddrs(&info)
	return addrs
}

// do runs apply on the event loop and waits until its writes are durable.
func (n *Node) do(ctx context.Context, apply func(tx *txn) error) error {
	return n.doWeighted(ctx, 0, apply)
}

// doWeighted is do for a request that merges weight records from an
// anti-entropy session (with weight > 0 it waits in the merge queue).
func (n *Node) doWeighted(ctx context.Context, weight int, apply func(tx *txn) error) error {
	if n.closed.Load() {
		return ErrClosed
	}
	r := &request{apply: apply, done: make(chan error, 1), weight: weight}
	q := n.reqs
	if weight > 0 {
		q = n.merges
	}
	select {
	case q <- r:
	case <-n.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, wait for the outcome even if ctx ends: the write may
	// already be durable, and the caller must not believe otherwise.
	select {
	case err := <-r.done:
		return err
	case <-n.closing:
		select {
		case err := <-r.done:
			return err
		default:
			return ErrClosed
		}
	}
}

// durableBarrier returns once every batch committed before the call is
// durable. A reader that sends what it read from the store outside the
// event loop (a holder's answer, a handoff) calls it between the read and
// the send, so nothing leaves before its fsync. The empty request is
// released by the syncer in commit order, after every earlier batch.
func (n *Node) durableBarrier(ctx context.Context) error {
	return n.do(ctx, func(*txn) error { return nil })
}

// loop is the only goroutine that touches the clock and the Merkle trees. It
// drains the request queue into batches, writes each batch to the store and
// hands it to the syncer, then goes on with the next batch while the WAL
// sync is in flight: concurrent writers share one fsync (group commit), and
// the fsync overlaps the next batch's work.
func (n *Node) loop() {
	defer n.wg.Done()
	defer close(n.syncq)
	for {
		batch, ok := n.nextBatch()
		if !ok {
			n.drainClosed()
			return
		}
		n.runBatch(batch)
	}
}

// nextBatch waits for work, then takes every local request waiting (up to
// maxBatch) and session merges of up to maxMerged records (at least one).
// Local requests do not queue behind merges: however many sessions merge
// at once, a write waits for about one batch of merges.
func (n *Node) nextBatch() ([]*request, bool) {
	batch := make([]*request, 0, 16)
	merged := 0
	add := func(r *request) {
		batch = append(batch, r)
		merged += r.weight
	}
	select {
	case r := <-n.reqs:
		add(r)
	case r := <-n.merges:
		add(r)
	case <-n.closing:
		return nil, false
	}
local:
	for len(batch) < maxBatch {
		select {
		case r := <-n.reqs:
			add(r)
		default:
			break local
		}
	}
merges:
	for merged < maxMerged {
		select {
		case r := <-n.merges:
			add(r)
		default:
			break merges
		}
	}
	return batch, true
}

func (n *Node) drainClosed() {
	for {
		var r *request
		select {
		case r = <-n.reqs:
		case r = <-n.merges:
		default:
			return
		}
		if r.done != nil {
			r.done <- ErrClosed
		}
	}
}

// syncWait is a written batch on its way to its callers. Batches reach the
// syncer in commit order and leave it in that order.
type syncWait struct {
	tx     *txn
	deltas []outgoing // encoded on the loop, while the fsync runs
	reqs   []*request
	errs   []error
}

// runBatch applies a batch's requests, writes the batch, updates the trees
// and hands it to the syncer, which releases it (gossip, watchers,
// acknowledgements) once it is durable. The loop goes on with the next
// batch meanwhile, so the fsync overlaps it and concurrent writers share
// one fsync (group commit).
func (n *Node) runBatch(batch []*request) {
	n.disk.check()
	tx := newTxn(n.ctx, n)
	errs := make([]error, len(batch))
	for i, r := range batch {
		errs[i] = r.apply(tx)
	}
	if err := tx.commit(); err != nil {
		n.log.Error("store commit failed; batch not acknowledged", "err", err, "writes", len(tx.order))
		n.stats.storeErrors.Add(1)
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		ack(batch, errs)
		return
	}
	n.disk.wrote(tx.bytes)
	n.disk.quota.wrote(tx.quotaBytes, len(tx.order) > 0)
	n.updateTrees(tx)
	for _, fn := range tx.after {
		fn()
	}
	n.syncq <- syncWait{tx: tx, deltas: n.encodeDeltas(tx), reqs: batch, errs: errs}
}

func ack(batch []*request, errs []error) {
	for i, r := range batch {
		if r.done != nil {
			r.done <- errs[i]
		}
	}
}

// syncer makes written batches durable and releases them. It takes every
// batch waiting at once, so one fsync covers them all; batches of merged
// remote states alone need none (anti-entropy restores them after a
// crash), and pass straight through when nothing waiting needs one.
func (n *Node) syncer() {
	defer n.wg.Done()
	unsynced := false // the last sync failed
	for w := range n.syncq {
		waits := []syncWait{w}
	more:
		for {
			select {
			case w, ok := <-n.syncq:
				if !ok {
					break more
				}
				waits = append(waits, w)
			default:
				break more
			}
		}
		err := n.syncIfNeeded(waits, unsynced)
		// After a failed sync, earlier writes may still be readable but
		// not durable: nothing waiting now is released (a durability
		// barrier among them included), and the next group syncs first.
		unsynced = err != nil
		for _, w := range waits {
			if err != nil {
				for i := range w.errs {
					if w.errs[i] == nil {
						w.errs[i] = err
					}
				}
			} else {
				n.release(w)
			}
			ack(w.reqs, w.errs)
		}
	}
}

// syncIfNeeded syncs the store if any of waits holds a write that must be
// durable before it leaves the node, or if the last sync failed.
func (n *Node) syncIfNeeded(waits []syncWait, unsynced bool) error {
	if !unsynced && !slices.ContainsFunc(waits, func(w syncWait) bool { return w.tx.durable }) {
		return nil
	}
	if err := n.store.Sync(n.ctx, ds.NewKey(statePrefix)); err != nil {
		n.log.Error("store sync failed; writes not acknowledged", "err", err)
		n.stats.storeErrors.Add(1)
		return fmt.Errorf("%w: sync: %v", ErrStore, err)
	}
	return nil
}

// updateTrees applies a written batch to the Merkle trees. Event loop only.
func (n *Node) updateTrees(tx *txn) {
	for _, c := range tx.order {
		if c.own || c.hint {
			continue
		}
		if c.drop {
			n.trees[c.part].Delete(c.key)
		} else {
			n.trees[c.part].Put(c.key, crdt.DigestOf(c.encoded))
			n.quar.release(c.part, c.key) // written again or confirmed
		}
	}
}

// encodeDeltas encodes the deltas a batch will gossip. Event loop only.
func (n *Node) encodeDeltas(tx *txn) []outgoing {
	if n.cfg.DisableGossip {
		return nil
	}
	var out []outgoing
	for _, c := range tx.order {
		if !c.own && !c.hint && !c.quiet && c.delta != nil {
			out = append(out, outgoing{part: c.part, record: appendDeltaRecord(nil, deltaRecord{key: c.key, stamp: c.stamp, state: crdt.Encode(c.delta)})})
		}
	}
	return out
}

// release lets a durable batch leave the node: its deltas are published
// and watchers told. Nothing of a batch is sent before this.
func (n *Node) release(w syncWait) {
	for _, o := range w.deltas {
		n.enqueuePublish(o)
	}
	for _, c := range w.tx.order {
		if c.own || c.quiet {
			continue
		}
		if c.remote && !c.hint {
			n.stats.keysMerged.Add(1)
		}
		n.watch.notify(c)
	}
}

// storedKeys counts the keys in the trees.
func (n *Node) storedKeys() int {
	total := 0
	for _, t := range n.trees {
		total += t.Len()
	}
	return total
}

// rebuildTrees builds every partition's Merkle tree from the store.
func (n *Node) rebuildTrees(ctx context.Context) error {
	start := time.Now()
	type item struct {
		key    []byte
		digest crdt.Digest
	}
	parts := make([][]item, n.cfg.Partitions)
	count := 0
	now := n.cfg.Now().UnixNano()
	old := make(map[uint32]map[string]struct{}) // stale partitions' old states
	for p, last := range n.quar.last {
		if n.retain.Stale(last, now) {
			old[uint32(p)] = make(map[string]struct{})
		}
	}
	err := scanStates(ctx, n.store, func(key, state []byte) error {
		p := partitionOf(key, n.cfg.Partitions)
		if q, stale := old[p]; stale {
			if s, err := decodeStored(key, state); err == nil && n.retain.Old(s, now) {
				q[string(key)] = struct{}{}
				return nil
			}
		}
		parts[p] = append(parts[p], item{key, crdt.DigestOf(state)})
		count++
		return nil
	})
	if err != nil {
		return err
	}
	for p, keys := range old {
		n.quar.markStale(p, keys)
		n.log.Warn("partition not reconciled within the tombstone grace: its old register states wait for a fresh holder", "partition", p, "quarantined", len(keys))
	}
	n.trees = make([]*merkle.Tree, n.cfg.Partitions)
	for p := range parts {
		n.trees[p] = merkle.Build(func(yield func([]byte, crdt.Digest) bool) {
			for _, it := range parts[p] {
				if !yield(it.key, it.digest) {
					return
				}
			}
		})
	}
	n.log.Info("merkle trees rebuilt from store", "keys", count, "partitions", n.cfg.Partitions, "took_seconds", time.Since(start).Seconds())
	return nil
}

// meshID identifies a mesh configuration; peers must agree on it. The
// replication factor is part of it: nodes with different R would compute
// different placements and gossip on different topics.
func meshID(mesh string, partitions, replication int) [8]byte {
	return sha8(fmt.Sprintf("gossipmesh/mesh/v2\x00%s\x00%d\x00%d", mesh, partitions, replication))
}

// Host is the node's libp2p host, for embedders that run their own
// protocols beside the mesh.
func (n *Node) Host() host.Host { return n.host }

// PubSub is the node's GossipSub instance; a host carries only one, so
// embedders that need their own topics join them here.
func (n *Node) PubSub() *pubsub.PubSub { return n.ps }
