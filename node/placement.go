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
// A member in full (its store full, as its heartbeat says) is a candidate
// only for the partitions it stores (full[m][p]): it keeps what it has and
// gets nothing new, and the next members by score take its place. A
// partition no candidate is left for (every member full, none storing it)
// is placed as if none were full, so every partition has holders. Every
// input comes from the members' own heartbeats, so every node computes the
// same placement.
func computePlacement(self peer.ID, members []peer.ID, pins map[peer.ID][]uint32, full map[peer.ID][]bool, partitions, r int) *placement {
	ms := slices.Clone(members)
	if !slices.Contains(ms, self) {
		ms = append(ms, self)
	}
	slices.Sort(ms)
	ms = slices.Compact(ms)
	pl := &placement{members: ms, holders: make([][]peer.ID, partitions), held: make([]bool, partitions)}
	type scored struct {
		id    peer.ID
		score uint64
	}
	ranked := make([]scored, 0, len(ms))
	for p := range partitions {
		var hs []peer.ID
		cands := candidates(ms, full, uint32(p))
		if r <= 0 {
			hs = slices.Clone(ms)
		} else if r >= len(cands) {
			hs = slices.Clone(cands)
		} else {
			ranked = ranked[:0]
			for _, m := range cands {
				ranked = append(ranked, scored{m, rendezvousScore(uint32(p), m)})
			}
			slices.SortFunc(ranked, func(a, b scored) int {
				if c := cmp.Compare(b.score, a.score); c != 0 {
					return c
				}
				return cmp.Compare(a.id, b.id)
			})
			for _, s := range ranked[:r] {
				hs = append(hs, s.id)
			}
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

// candidates returns the members placement may give partition p: all
// but those in full that do not store p; all if that leaves none.
func candidates(ms []peer.ID, full map[peer.ID][]bool, p uint32) []peer.ID {
	if len(full) == 0 {
		return ms
	}
	out := make([]peer.ID, 0, len(ms))
	for _, m := range ms {
		if stores, ok := full[m]; !ok || int(p) < len(stores) && stores[p] {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return ms
	}
	return out
}

// holds reports whether member m holds partition p.
func (pl *placement) holds(p uint32, m peer.ID) bool {
	return int(p) < len(pl.holders) && slices.Contains(pl.holders[p], m)
}
