package node

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// placement is an immutable view of who holds which partition, computed by
// every node from its own member list. Nodes with the same member list
// compute the same placement: there is no coordinator to agree with.
type placement struct {
	members []peer.ID   // live members, self included, sorted
	holders [][]peer.ID // by partition: rendezvous choice plus pinning nodes
	held    []bool      // by partition: this node is a holder
}

// rendezvousScore ranks member m for partition p (highest random weight).
// The hash is fixed forever: changing it would move every partition.
func rendezvousScore(p uint32, m peer.ID) uint64 {
	h := sha256.New()
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], p)
	h.Write([]byte("gossipmesh/place/v1\x00"))
	h.Write(b[:])
	h.Write([]byte(m))
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}

// computePlacement places each of partitions on the r members with the
// highest rendezvous score, plus every member that pins it. r = 0 places
// every partition on every member. A member change moves only the
// partitions whose top r changed, about r/len(members) of them.
//
// A member in full (its store full, as its heartbeat says: full[m] is
// which partitions it stores) takes nothing new. It keeps the partitions
// it would hold and stores, but does not count towards r there: the next
// member by score is added, so r members can take the partition's writes;
// and it gets no partition it does not store. When no member can take
// writes for a partition (every one full), the partition is placed as if
// none were, so every partition has holders. Every input comes from the
// members' own heartbeats, so every node computes the same placement.
func computePlacement(self peer.ID, members []peer.ID, pins map[peer.ID][]uint32, full map[peer.ID][]bool, partitions, r int) *placement {
	ms := slices.Clone(members)
	if !slices.Contains(ms, self) {
		ms = append(ms, self)
	}
	slices.Sort(ms)
	ms = slices.Compact(ms)
	pl := &placement{members: ms, holders: make([][]peer.ID, partitions), held: make([]bool, partitions)}
	ranked := make([]scored, len(ms))
	for p := range partitions {
		var hs []peer.ID
		if r <= 0 || r >= len(ms) && len(full) == 0 {
			hs = slices.Clone(ms)
		} else {
			hs = choose(uint32(p), ms, ranked, full, r)
		}
		for m, ps := range pins {
			if slices.Contains(ps, uint32(p)) && slices.Contains(ms, m) && !slices.Contains(hs, m) {
				hs = append(hs, m)
			}
		}
		slices.Sort(hs)
		pl.holders[p] = hs
		pl.held[p] = slices.Contains(hs, self)
	}
	return pl
}

// scored is a member's rendezvous score for one partition.
type scored struct {
	id    peer.ID
	score uint64
}

// choose ranks ms for partition p (in ranked, reused across partitions)
// and returns the first r members that are not full, with the full ones
// ranked among them that store p.
func choose(p uint32, ms []peer.ID, ranked []scored, full map[peer.ID][]bool, r int) []peer.ID {
	for i, m := range ms {
		ranked[i] = scored{m, rendezvousScore(p, m)}
	}
	slices.SortFunc(ranked, func(a, b scored) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	var hs []peer.ID
	room := 0
	for _, s := range ranked {
		if room == r {
			break
		}
		stores, isFull := full[s.id]
		switch {
		case !isFull:
			hs, room = append(hs, s.id), room+1
		case int(p) < len(stores) && stores[p]:
			hs = append(hs, s.id)
		}
	}
	if room == 0 {
		hs = hs[:0]
		for _, s := range ranked[:min(r, len(ranked))] {
			hs = append(hs, s.id)
		}
	}
	return hs
}

// holds reports whether member m holds partition p.
func (pl *placement) holds(p uint32, m peer.ID) bool {
	return int(p) < len(pl.holders) && slices.Contains(pl.holders[p], m)
}
