package node

import (
	"errors"
	gosync "sync"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/sync/antientropy"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Peer scoring. Only what a peer can be blamed for counts: invalid messages
// (P4, squared, so a burst sinks a score fast) and GossipSub protocol
// misbehaviour. IP colocation is off: an edge mesh often sits behind one
// NAT, and tests run on one loopback address.
//
// With weight -0.5 a peer falls below the gossip threshold after 5 invalid
// messages, below the publish threshold after 10 and is graylisted (its
// RPCs ignored) after 13. The invalid-input counter (MaxInvalidInputs,
// default 10 a minute) disconnects and blocks it at about the same point.
const (
	scoreGossipThreshold   = -10
	scorePublishThreshold  = -50
	scoreGraylistThreshold = -80
	invalidMessageWeight   = -0.5
)

// peerScoring is the GossipSub option that turns on peer scoring for every
// delta topic and records the scores for PeerScore.
func (n *Node) peerScoring() pubsub.Option {
	topic := &pubsub.TopicScoreParams{
		SkipAtomicValidation:           true,
		TopicWeight:                    1,
		TimeInMeshQuantum:              time.Second, // unused (weight 0) but divided by
		TimeInMeshCap:                  1,
		InvalidMessageDeliveriesWeight: invalidMessageWeight,
		InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
	}
	topics := map[string]*pubsub.TopicScoreParams{}
	for _, key := range n.deltaTopics() {
		topics[n.topicName(key)] = topic
	}
	params := &pubsub.PeerScoreParams{
		SkipAtomicValidation:      true,
		Topics:                    topics,
		AppSpecificScore:          func(peer.ID) float64 { return 0 },
		BehaviourPenaltyWeight:    -1,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:             pubsub.DefaultDecayInterval,
		DecayToZero:               pubsub.DefaultDecayToZero,
		RetainScore:               10 * time.Minute,
	}
	thresholds := &pubsub.PeerScoreThresholds{
		SkipAtomicValidation: true,
		GossipThreshold:      scoreGossipThreshold,
		PublishThreshold:     scorePublishThreshold,
		GraylistThreshold:    scoreGraylistThreshold,
	}
	return func(ps *pubsub.PubSub) error {
		if err := pubsub.WithPeerScore(params, thresholds)(ps); err != nil {
			return err
		}
		return pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(n.sec.scores.set), time.Second)(ps)
	}
}

// scoreBoard keeps the latest GossipSub scores, refreshed every second.
type scoreBoard struct {
	mu gosync.Mutex
	m  map[peer.ID]float64
}

func (b *scoreBoard) set(m map[peer.ID]float64) {
	b.mu.Lock()
	b.m = m
	b.mu.Unlock()
}

// PeerScore is the GossipSub score of a peer as of the last second; false
// when pubsub does not track it.
func (n *Node) PeerScore(id peer.ID) (float64, bool) {
	b := &n.sec.scores
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.m[id]
	return s, ok
}

// offenceWindow is how long invalid inputs from one peer add up.
const offenceWindow = time.Minute

// offenders counts invalid input per peer within offenceWindow.
type offenders struct {
	mu gosync.Mutex
	m  map[peer.ID]*offence
}

type offence struct {
	count int
	since time.Time
}

func (o *offenders) init() { o.m = make(map[peer.ID]*offence) }

// note counts one invalid input and reports whether id just went past
// limit; its count then starts over.
func (o *offenders) note(id peer.ID, now time.Time, limit int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.m) > 4096 { // many peers, each a little bad: forget the stale
		for k, v := range o.m {
			if now.Sub(v.since) > offenceWindow {
				delete(o.m, k)
			}
		}
	}
	e := o.m[id]
	if e == nil || now.Sub(e.since) > offenceWindow {
		e = &offence{since: now}
		o.m[id] = e
	}
	e.count++
	if e.count > limit {
		delete(o.m, id)
		return true
	}
	return false
}

// noteInvalid blames a peer for one invalid message. A peer past
// MaxInvalidInputs in a minute is disconnected and refused by the gater for
// BlockDuration: scoring alone only stops GossipSub listening to it, while
// its connection and sync streams would still cost us.
func (n *Node) noteInvalid(from peer.ID) {
	limit := n.cfg.MaxInvalidInputs
	if limit == 0 {
		limit = 10
	}
	if limit < 0 || from == "" || from == n.host.ID() {
		return
	}
	now := n.cfg.Now()
	if !n.sec.offenders.note(from, now, limit) {
		return
	}
	d := n.cfg.BlockDuration
	if d == 0 {
		d = 10 * time.Minute
	}
	n.sec.gate.block(from, now.Add(d))
	n.sec.peersBlocked.Add(1)
	n.log.Warn("disconnecting and blocking a peer that keeps sending invalid input",
		"peer", from, "limit_per_minute", limit, "blocked_for_seconds", d.Seconds())
	// Not inline: the caller may be a pubsub validator or a stream handler
	// of the connection being closed.
	go n.host.Network().ClosePeer(from)
}

// noteSyncError blames the peer of a failed sync session when the failure
// was its input, not the network.
func (n *Node) noteSyncError(id peer.ID, err error) {
	if isInvalidInput(err) {
		n.noteInvalid(id)
	}
}

// noteStreamError counts a stream cut by the node's bounds: a frame its
// memory budget refused, a peer that stopped reading. Neither is held
// against the peer.
func (n *Node) noteStreamError(err error) {
	switch {
	case errors.Is(err, ErrFrameRefused):
		n.sec.framesRefused.Add(1)
	case errors.Is(err, ErrStalled):
		n.sec.stalled.Add(1)
	}
}

func isInvalidInput(err error) bool {
	for _, target := range []error{
		ErrBadFrame, ErrBadEnvelope, ErrValueTooLarge, ErrKeyTooLarge, ErrInvalidKey,
		crdt.ErrClockDrift, crdt.ErrMalformed, crdt.ErrTruncated, crdt.ErrTooLarge,
		crdt.ErrUnknownKind, crdt.ErrUnknownVersion,
		antientropy.ErrMalformed, antientropy.ErrTruncated, antientropy.ErrTooLarge,
		antientropy.ErrUnknownVersion, antientropy.ErrProtocol,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// syncCaps counts inbound sync sessions per peer.
type syncCaps struct {
	mu     gosync.Mutex
	max    int
	active map[peer.ID]int
}

func (c *syncCaps) init(max int) {
	if max <= 0 {
		max = 2
	}
	c.max, c.active = max, make(map[peer.ID]int)
}

func (c *syncCaps) acquire(id peer.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active[id] >= c.max {
		return false
	}
	c.active[id]++
	return true
}

func (c *syncCaps) release(id peer.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active[id]--; c.active[id] <= 0 {
		delete(c.active, id)
	}
}

// guardSync wraps the sync stream handler with the per-peer session cap:
// sessions past MaxSyncSessionsPerPeer are reset at once, before anything
// is read or allocated for them.
func (n *Node) guardSync(h network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		id := s.Conn().RemotePeer()
		if !n.sec.syncs.acquire(id) {
			n.sec.syncRefused.Add(1)
			_ = s.Reset()
			return
		}
		defer n.sec.syncs.release(id)
		h(s)
	}
}
