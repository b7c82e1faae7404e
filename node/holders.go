package node

import (
	"context"
	"fmt"
	"slices"
	gosync "sync"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/sync/merkle"
	"github.com/libp2p/go-libp2p/core/peer"
)

// otherHolders returns the current holders of p other than this node, in
// random order.
func (n *Node) otherHolders(p uint32) []peer.ID {
	pl := n.place()
	if pl == nil {
		return nil
	}
	hs := slices.DeleteFunc(slices.Clone(pl.holders[p]), func(id peer.ID) bool { return id == n.host.ID() })
	for i := len(hs) - 1; i > 0; i-- {
		j := randIntN(i + 1)
		hs[i], hs[j] = hs[j], hs[i]
	}
	return hs
}

// holdersWithRoom returns otherHolders(p) less the members whose store is
// full, unless that leaves none: a full holder lacks what it refused.
func (n *Node) holdersWithRoom(p uint32) []peer.ID {
	hs := n.otherHolders(p)
	full := n.members.fullByMember()
	if len(full) == 0 {
		return hs
	}
	room := slices.DeleteFunc(slices.Clone(hs), func(id peer.ID) bool { _, ok := full[id]; return ok })
	if len(room) == 0 {
		return hs
	}
	return room
}

// refusesRemote reports whether, under placement, this node is full or
// says it is (see diskGuard.announceFull): it refuses or has refused
// remote states, so its reads of the partitions it holds go through the
// other holders too.
func (n *Node) refusesRemote() bool {
	return n.cfg.Replication > 0 && (n.disk.full() || n.selfFull.Load() != nil)
}

// holderAnswer is one holder's reply to a read of a key.
type holderAnswer struct {
	state    crdt.State // nil: the holder has none
	answered bool
}

// ask reads key from holder id within Config.HolderTimeout. A holder that
// is not one, or that gained the partition and has not pulled it yet and
// has nothing for the key, does not count as an answer.
func (n *Node) ask(ctx context.Context, id peer.ID, key []byte) holderAnswer {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.HolderTimeout)
	defer cancel()
	status, body, err := n.kvCall(ctx, id, kvGet, []kvRecord{{key: key}})
	switch {
	case err != nil || status == kvNotHolder || status == kvInvalid:
		return holderAnswer{}
	case status == kvAbsent:
		return holderAnswer{answered: true}
	}
	s, err := n.checkRecord(key, body)
	if err != nil {
		return holderAnswer{}
	}
	return holderAnswer{state: s, answered: true}
}

// fetch reads key's state from the first holder to answer (all are asked
// at once, within Config.HolderTimeout): nil, nil when it has none,
// ErrUnavailable when none answered.
func (n *Node) fetch(ctx context.Context, key []byte) (crdt.State, error) {
	p := partitionOf(key, n.cfg.Partitions)
	hs := n.holdersWithRoom(p)
	answers := make(chan holderAnswer, len(hs))
	var wg gosync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // runs first: the slower holders are cut off
	for _, id := range hs {
		wg.Go(func() { answers <- n.ask(ctx, id, key) })
	}
	for range hs {
		if a := <-answers; a.answered {
			return a.state, nil
		}
	}
	return nil, fmt.Errorf("%w for partition %d", ErrUnavailable, p)
}

// fetchAll reads key's state from every other holder at once and merges
// what they answer within Config.HolderTimeout: a holder that has not
// caught up yet cannot hide what another has, and one that is unreachable
// costs one timeout, not one per holder. It returns ErrUnavailable when
// none answered.
func (n *Node) fetchAll(ctx context.Context, key []byte) (crdt.State, error) {
	p := partitionOf(key, n.cfg.Partitions)
	hs := n.otherHolders(p)
	answers := make([]holderAnswer, len(hs))
	var wg gosync.WaitGroup
	for i, id := range hs {
		wg.Go(func() { answers[i] = n.ask(ctx, id, key) })
	}
	wg.Wait()
	var merged crdt.State
	answered := 0
	for _, a := range answers {
		if a.answered {
			answered++
			merged = joinStates(merged, a.state)
		}
	}
	if answered == 0 {
		return nil, fmt.Errorf("%w for partition %d", ErrUnavailable, p)
	}
	return merged, nil
}

// gainedPartitions are the partitions this node came to hold through a
// membership change and has not yet reconciled with a member that has data
// for them, with the time each was gained. Until then its view of them may
// lack the key's history, so it does not act on that view for removes, and
// does not answer "absent" for them to other nodes.
type gainedPartitions struct {
	mu    gosync.Mutex
	parts map[uint32]time.Time
}

func (g *gainedPartitions) set(gained, lost []uint32, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.parts == nil {
		g.parts = map[uint32]time.Time{}
	}
	for _, p := range gained {
		g.parts[p] = now
	}
	for _, p := range lost {
		delete(g.parts, p)
	}
}

// pulledFrom clears the partitions for which a peer with whom a session
// just completed reported data (roots by partition, from its hello).
func (g *gainedPartitions) pulledFrom(roots []merkle.Hash) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for p := range g.parts {
		if int(p) < len(roots) && roots[p] != emptyRoot && roots[p] != (merkle.Hash{}) {
			delete(g.parts, p)
		}
	}
}

func (g *gainedPartitions) since(p uint32) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.parts[p]
	return t, ok
}

// viewIncomplete reports whether this node's state of partition p may lack
// history another member has: p was gained and not pulled yet, and either
// another live member stores data for it, or it was gained too recently
// for this node to tell (the member that held it may only look dead, as
// after a pause or behind a partition). After that a partition whose
// history no live member has is served from what this node has.
func (n *Node) viewIncomplete(p uint32) bool {
	at, ok := n.gained.since(p)
	if !ok {
		return false
	}
	if n.cfg.Now().Sub(at) < n.heartbeatScale()*n.cfg.DeadAfter {
		return true
	}
	self := n.host.ID()
	return slices.ContainsFunc(n.members.withData(p), func(id peer.ID) bool { return id != self })
}
