package node

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func fakeMembers(n int) []peer.ID {
	out := make([]peer.ID, n)
	for i := range out {
		out[i] = peer.ID(fmt.Sprintf("member-%03d", i))
	}
	return out
}

func TestPlacementHoldsExactlyRAndAgreesAcrossNodes(t *testing.T) {
	ms := fakeMembers(10)
	ref := computePlacement(ms[0], ms, nil, nil, 64, 3)
	for _, self := range ms {
		shuffled := slices.Clone(ms)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		pl := computePlacement(self, shuffled, nil, nil, 64, 3)
		for p := range 64 {
			if len(pl.holders[p]) != 3 {
				t.Fatalf("partition %d has %d holders", p, len(pl.holders[p]))
			}
			if !slices.Equal(pl.holders[p], ref.holders[p]) {
				t.Fatalf("nodes disagree on partition %d", p)
			}
			if pl.held[p] != slices.Contains(pl.holders[p], self) {
				t.Fatalf("held flag wrong")
			}
		}
	}
}

func TestPlacementMovesFewPartitionsOnChange(t *testing.T) {
	ms := fakeMembers(10)
	before := computePlacement(ms[0], ms, nil, nil, 256, 3)
	after := computePlacement(ms[0], append(ms, "member-new"), nil, nil, 256, 3)
	moved := 0
	for p := range 256 {
		if !slices.Equal(before.holders[p], after.holders[p]) {
			moved++
		}
	}
	// Expected about 3/11 of partitions gain the new member; nothing else moves.
	if moved > 256*3/11*2 {
		t.Fatalf("%d of 256 partitions moved when one member joined", moved)
	}
	for p := range 256 {
		for _, h := range after.holders[p] {
			if h != "member-new" && !slices.Contains(before.holders[p], h) {
				t.Fatalf("partition %d moved between old members", p)
			}
		}
	}
}

func TestPlacementPinsAndFullReplication(t *testing.T) {
	ms := fakeMembers(5)
	full := computePlacement(ms[0], ms, nil, nil, 8, 0)
	for p := range 8 {
		if len(full.holders[p]) != 5 || !full.held[p] {
			t.Fatalf("R=0 must place every partition everywhere")
		}
	}
	pinned := computePlacement(ms[4], ms, map[peer.ID][]uint32{ms[4]: {0, 1, 2, 3, 4, 5, 6, 7}}, nil, 8, 1)
	for p := range 8 {
		if !pinned.held[p] {
			t.Fatalf("a pinned partition %d is not held", p)
		}
	}
}
