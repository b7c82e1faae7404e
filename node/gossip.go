package node

import (
	"context"
	"fmt"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// outgoing is one key's delta waiting to be published, already encoded as
// an envelope record.
type outgoing struct {
	part   uint32
	record []byte
}

// deltaTopic is the topic that carries partition p's deltas. Under full
// replication every node holds every partition, so one topic carries them
// all: one GossipSub mesh to maintain instead of P, and deltas of different
// partitions packed into one signed message. Under placement each partition
// has its own, so a node receives only the deltas of partitions it holds.
func (n *Node) deltaTopic(p uint32) uint32 {
	if n.cfg.Replication == 0 {
		return mixedPartition
	}
	return p
}

// deltaTopics lists every topic deltaTopic can return.
func (n *Node) deltaTopics() []uint32 {
	if n.cfg.Replication == 0 {
		return []uint32{mixedPartition}
	}
	ts := make([]uint32, n.cfg.Partitions)
	for p := range ts {
		ts[p] = uint32(p)
	}
	return ts
}

// topicName is the GossipSub name of a delta topic. The mesh ID is part of
// the name, so meshes never share topics.
func (n *Node) topicName(t uint32) string {
	if t == mixedPartition {
		return fmt.Sprintf("/gossipmesh/%x/all", n.meshID)
	}
	return fmt.Sprintf("/gossipmesh/%x/p/%d", n.meshID, t)
}

func (n *Node) startGossip() error {
	ps, err := pubsub.NewGossipSub(n.ctx, n.host,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		n.peerScoring(),
		pubsub.WithMaxMessageSize(n.cfg.MaxValueBytes+n.cfg.MaxKeyBytes+4096),
		pubsub.WithValidateQueueSize(4096),
		pubsub.WithPeerOutboundQueueSize(4096),
		// A node's own deltas go to every connected subscriber, not only
		// its GossipSub mesh: a write made before the mesh has formed
		// (GossipSub grafts at its next heartbeat) still leaves at once,
		// instead of waiting for anti-entropy. A mesh node has few direct
		// connections, so this costs little.
		pubsub.WithFloodPublish(true),
	)
	if err != nil {
		return fmt.Errorf("node: gossipsub: %w", err)
	}
	n.ps = ps
	n.topics = map[uint32]*pubsub.Topic{}
	n.subs = map[uint32]*pubsub.Subscription{}
	n.wg.Add(1)
	go n.publisher()
	return nil
}

// subscribe starts receiving the deltas of partition p. Placement calls it
// for every partition this node comes to hold.
func (n *Node) subscribe(p uint32) {
	if n.cfg.DisableGossip {
		return
	}
	n.topicsMu.Lock()
	defer n.topicsMu.Unlock()
	key := n.deltaTopic(p)
	if n.subs[key] != nil {
		return
	}
	t, err := n.joinTopic(key)
	if err != nil {
		n.log.Error("cannot join partition topic", "partition", p, "err", err)
		return
	}
	// A deep buffer: GossipSub drops messages for a subscriber that falls
	// behind, and a burst of writes must not cost a wait for anti-entropy.
	sub, err := t.Subscribe(pubsub.WithBufferSize(8192))
	if err != nil {
		n.log.Error("cannot subscribe to partition topic", "partition", p, "err", err)
		return
	}
	n.subs[key] = sub
	n.wg.Add(1)
	go n.receive(sub)
}

// unsubscribe stops receiving the deltas of partition p. The topic stays
// joined (it costs nothing without a subscription) so that it can be
// subscribed again without re-registering its validator.
func (n *Node) unsubscribe(p uint32) {
	if n.cfg.Replication == 0 {
		return // every partition stays held, and the topic is shared
	}
	n.topicsMu.Lock()
	defer n.topicsMu.Unlock()
	if sub := n.subs[p]; sub != nil {
		sub.Cancel()
		delete(n.subs, p)
	}
}

// joinTopic joins delta topic key once, with its validator. topicsMu held.
func (n *Node) joinTopic(key uint32) (*pubsub.Topic, error) {
	if t := n.topics[key]; t != nil {
		return t, nil
	}
	name := n.topicName(key)
	if err := n.ps.RegisterTopicValidator(name, n.validator(key)); err != nil {
		return nil, fmt.Errorf("node: gossipsub validator: %w", err)
	}
	t, err := n.ps.Join(name)
	if err != nil {
		return nil, fmt.Errorf("node: join %s: %w", name, err)
	}
	n.topics[key] = t
	return t, nil
}

// received is what the validator decoded, handed to the receiver so a
// message is parsed once.
type received struct {
	records []receivedRecord
}

type receivedRecord struct {
	key   []byte
	stamp crdt.Timestamp
	state crdt.State
}

// validator refuses, before a message is forwarded to anyone, what is
// malformed, too large, for another mesh or partition, or stamped too far in
// the future. Rejected messages count against the sender's peer score.
// key is the delta topic: a partition, or mixedPartition.
func (n *Node) validator(key uint32) pubsub.ValidatorEx {
	self := n.host.ID()
	return func(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		if from == self && msg.GetFrom() == self {
			// Our own publication: made from committed state, and never
			// applied here again (receive skips it).
			return pubsub.ValidationAccept
		}
		r, err := n.checkDelta(key, msg.Data)
		if err != nil {
			n.stats.deltasInvalid.Add(1)
			n.logInvalid(from, err)
			n.noteInvalid(from)
			return pubsub.ValidationReject
		}
		msg.ValidatorData = r
		return pubsub.ValidationAccept
	}
}

// checkDelta decodes and checks a gossip message on delta topic key (a
// partition, or mixedPartition). One bad record refuses the whole message:
// its sender is faulty or hostile.
func (n *Node) checkDelta(key uint32, data []byte) (*received, error) {
	e, err := decodeEnvelope(data, n.cfg.MaxKeyBytes, n.cfg.maxStateBytes())
	if err != nil {
		return nil, err
	}
	if e.mesh != n.meshID {
		return nil, ErrMeshMismatch
	}
	if e.part != key {
		return nil, fmt.Errorf("%w: message for partition %d on the topic of %d", ErrBadEnvelope, e.part, key)
	}
	r := &received{records: make([]receivedRecord, len(e.records))}
	for i, rec := range e.records {
		// A mixed message may carry any key: every key is in some
		// partition below P, and this node holds them all.
		if key != mixedPartition && partitionOf(rec.key, n.cfg.Partitions) != key {
			return nil, fmt.Errorf("%w: key does not belong to partition %d", ErrBadEnvelope, key)
		}
		if n.cfg.MaxClockDrift > 0 && rec.stamp.Wall > n.cfg.Now().Add(n.cfg.MaxClockDrift).UnixNano() {
			return nil, fmt.Errorf("%w: delta stamped %v ahead", crdt.ErrClockDrift,
				time.Duration(rec.stamp.Wall-n.cfg.Now().UnixNano()))
		}
		st, err := n.checkRecord(rec.key, rec.state)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadEnvelope, err)
		}
		r.records[i] = receivedRecord{key: append([]byte(nil), rec.key...), stamp: rec.stamp, state: st}
	}
	return r, nil
}

// logInvalid logs refused input at most once a second, so a flood of bad
// messages cannot flood the log too.
func (n *Node) logInvalid(from peer.ID, err error) {
	now := n.cfg.Now().Unix()
	if last := n.stats.lastInvalidLog.Load(); last == now || !n.stats.lastInvalidLog.CompareAndSwap(last, now) {
		return
	}
	n.log.Warn("refused invalid input from peer", "peer", from, "err", err, "refused_total", n.stats.deltasInvalid.Load())
}

func (n *Node) receive(sub *pubsub.Subscription) {
	defer n.wg.Done()
	defer sub.Cancel()
	self := n.host.ID()
	for {
		msg, err := sub.Next(n.ctx)
		if err != nil {
			return
		}
		if msg.ReceivedFrom == self || msg.GetFrom() == self {
			continue
		}
		r, ok := msg.ValidatorData.(*received)
		if !ok {
			continue
		}
		n.stats.deltasIn.Add(uint64(len(r.records)))
		now := n.cfg.Now().UnixNano()
		for _, rec := range r.records {
			n.stats.propagation.observe(time.Duration(now - rec.stamp.Wall))
		}
		req := &request{apply: func(tx *txn) error { return n.applyRemote(tx, r) }}
		select {
		case n.reqs <- req:
		case <-n.closing:
			return
		}
	}
}

// applyRemote merges the deltas of one received message. It runs on the
// event loop.
func (n *Node) applyRemote(tx *txn, r *received) error {
	now := n.cfg.Now().UnixNano()
	for _, rec := range r.records {
		if err := n.clock.Observe(rec.stamp, now); err != nil {
			n.stats.deltasInvalid.Add(1)
			return err
		}
		if n.retain.Old(rec.state, now) {
			// A register write older than the grace, replayed from a
			// gossip cache or a slow path: it may have been deleted and
			// collected since. Anti-entropy brings it if a holder has it.
			n.stats.deltasDropped.Add(1)
			continue
		}
		if _, err := tx.mergeRemote(rec.key, rec.state); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) enqueuePublish(o outgoing) {
	select {
	case n.publish <- o:
	default:
		// Gossip is best effort; anti-entropy repairs what is dropped here.
		n.stats.deltasDropped.Add(1)
	}
}

// publisher sends queued deltas, one message per delta topic for whatever
// queued up together (under full replication, one for every partition). Under load (deltas arriving faster than one per
// millisecond) it lingers publishLinger, or heavyLinger in a sustained
// burst, to gather more, so a loaded node spends one signature (and each
// receiver one verification) on many deltas; a lone write still leaves at
// once in a message of its own.
func (n *Node) publisher() {
	defer n.wg.Done()
	// A packed message must fit the size every receiver accepts for a
	// single delta.
	budget := n.cfg.MaxValueBytes + n.cfg.MaxKeyBytes + 4096 - 64
	pending := map[uint32]*packed{}
	var order []uint32
	queued := 0
	add := func(o outgoing) {
		key := n.deltaTopic(o.part)
		pk := pending[key]
		if pk == nil {
			pk = &packed{}
			pending[key] = pk
			order = append(order, key)
		}
		if pk.count > 0 && (pk.count == maxEnvelopeRecords || len(pk.body)+len(o.record) > budget) {
			queued -= pk.count
			n.publishPacked(key, pk)
		}
		pk.body = append(pk.body, o.record...)
		pk.count++
		queued++
	}
	linger := time.NewTimer(0)
	<-linger.C
	var lastFlush time.Time
	lastCount := 0
	for {
		select {
		case o := <-n.publish:
			add(o)
		case <-n.closing:
			return
		}
		if time.Since(lastFlush) < time.Millisecond || len(n.publish) > 0 {
			if lastCount >= heavyBatch {
				linger.Reset(heavyLinger)
			} else {
				linger.Reset(publishLinger)
			}
		gather:
			for queued < 4*maxEnvelopeRecords {
				select {
				case o := <-n.publish:
					add(o)
				case <-linger.C:
					break gather
				case <-n.closing:
					return
				}
			}
			if !linger.Stop() {
				select {
				case <-linger.C:
				default:
				}
			}
		}
		lastCount = queued
		for _, key := range order {
			n.publishPacked(key, pending[key])
			delete(pending, key)
		}
		order, queued = order[:0], 0
		lastFlush = time.Now()
	}
}

// publishLinger is how long a loaded publisher gathers deltas before
// sending: the most gossip latency it adds, and only under load.
const publishLinger = 5 * time.Millisecond

// heavyLinger replaces publishLinger while the last flush carried at least
// heavyBatch deltas: under a sustained burst the signature work per message
// is what limits the node, and a longer wait packs more into each.
const (
	heavyLinger = 20 * time.Millisecond
	heavyBatch  = 64
)

// packed is the records gathered for one delta topic's next message.
type packed struct {
	body  []byte
	count int
}

// publishPacked publishes pk on delta topic key, whose value is also the
// envelope's partition.
func (n *Node) publishPacked(key uint32, pk *packed) {
	if pk.count == 0 {
		return
	}
	count := pk.count
	data := appendEnvelopeHeader(make([]byte, 0, 16+len(pk.body)), n.meshID, key, count)
	data = append(data, pk.body...)
	pk.body, pk.count = pk.body[:0], 0
	n.topicsMu.Lock()
	t := n.topics[key]
	n.topicsMu.Unlock()
	if t == nil {
		return
	}
	if err := t.Publish(n.ctx, data); err != nil {
		n.stats.deltasDropped.Add(uint64(count))
		return
	}
	n.stats.deltasOut.Add(uint64(count))
}
