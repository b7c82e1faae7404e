package node

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/gossipmesh/gossipmesh/sync/merkle"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestHeartbeatCarriesTheFullFlagAndReadsVersionOne(t *testing.T) {
	hb := heartbeat{mesh: meshID("m", 16, 2), incarnation: 7, pins: []uint32{3},
		roots: []partitionRoot{{2, merkle.Hash{1}}, {5, merkle.Hash{2}}}, addrs: [][]byte{[]byte("addr")}}
	plain := appendHeartbeat(nil, hb)
	if plain[0] != heartbeatV1 {
		t.Fatalf("a heartbeat without flags is version %d, want %d (readable by earlier releases)", plain[0], heartbeatV1)
	}
	got, err := decodeHeartbeat(plain, 16)
	if err != nil || got.flags != 0 || got.incarnation != 7 || len(got.roots) != 2 {
		t.Fatalf("version 1 decoded as %+v, %v", got, err)
	}
	hb.flags = hbFull
	full := appendHeartbeat(nil, hb)
	if full[0] != heartbeatVersion {
		t.Fatalf("a full node's heartbeat is version %d, want %d", full[0], heartbeatVersion)
	}
	got, err = decodeHeartbeat(full, 16)
	if err != nil || got.flags&hbFull == 0 || !slices.Equal(got.pins, hb.pins) || len(got.addrs) != 1 {
		t.Fatalf("version 2 decoded as %+v, %v", got, err)
	}
	for name, b := range map[string][]byte{
		"no flags":       full[:len(full)-1],
		"trailing bytes": append(slices.Clone(full), 0),
		"version 3":      append([]byte{heartbeatVersion + 1}, full[1:]...),
		"version 0":      append([]byte{0}, plain[1:]...),
	} {
		if _, err := decodeHeartbeat(b, 16); !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("%s: %v, want ErrBadEnvelope", name, err)
		}
	}
}

func TestPlacementGivesAFullMemberOnlyWhatItStores(t *testing.T) {
	const partitions, r = 64, 3
	ms := fakeMembers(8)
	free := computePlacement(ms[0], ms, nil, nil, partitions, r)
	f := ms[5]
	// f stores what it holds now, less one partition (dropped since),
	// and one it does not hold (handing it over).
	stores := make([]bool, partitions)
	for p := range partitions {
		stores[p] = free.holds(uint32(p), f)
	}
	dropped := slices.Index(stores, true)
	handing := slices.Index(stores, false)
	stores[dropped], stores[handing] = false, true
	full := map[peer.ID][]bool{f: stores}
	ref := computePlacement(ms[0], ms, nil, full, partitions, r)
	skipped := 0
	for p := range partitions {
		for _, self := range ms {
			shuffled := slices.Clone(ms)
			slices.Reverse(shuffled)
			pl := computePlacement(self, shuffled, nil, full, partitions, r)
			if !slices.Equal(pl.holders[p], ref.holders[p]) {
				t.Fatalf("nodes disagree on partition %d with a full member", p)
			}
		}
		hs := ref.holders[p]
		kept := free.holds(uint32(p), f) && stores[p]
		if slices.Contains(hs, f) != kept {
			t.Fatalf("partition %d: the full member holds it %v, want %v (held %v, stores %v)", p, slices.Contains(hs, f), kept, free.holds(uint32(p), f), stores[p])
		}
		// r members that can take writes, and the full one where it keeps
		// what it has.
		if others := len(slices.DeleteFunc(slices.Clone(hs), func(m peer.ID) bool { return m == f })); others != r {
			t.Fatalf("partition %d has %d holders besides the full member, want %d", p, others, r)
		}
		if free.holds(uint32(p), f) && !stores[p] {
			skipped++
		}
		// Members are only added: every holder with room stays.
		for _, h := range free.holders[p] {
			if h != f && !slices.Contains(hs, h) {
				t.Fatalf("partition %d lost holder %s though only %s is full", p, h, f)
			}
		}
	}
	if skipped != 1 || ref.holds(uint32(dropped), f) || ref.holds(uint32(handing), f) {
		t.Fatalf("the dropped partition %d or the one handed over, %d, placed wrongly: %d skipped", dropped, handing, skipped)
	}
	// Every member full and none storing a partition: it is placed as if
	// none were full, so it still has holders.
	all := map[peer.ID][]bool{}
	for _, m := range ms {
		all[m] = make([]bool, partitions)
	}
	if pl := computePlacement(ms[0], ms, nil, all, partitions, r); !slices.Equal(pl.holders[7], free.holders[7]) {
		t.Fatalf("with every member full, partition 7 is held by %v, want %v", pl.holders[7], free.holders[7])
	}
}

// A node announces it has room again only a margin below its quota (or
// above its floor), so one at the boundary does not flap in and out of
// placement; its writes follow the limit itself.
func TestAnnouncedFullHasAMargin(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const quota, floor = 8000, 1000
	var size atomic.Uint64
	disk := &fakeDisk{}
	disk.free.Store(1 << 30)
	g := newDiskGuard(floor, disk.measure, log)
	g.quota = newStoreQuota(quota, func() (uint64, error) { return size.Load(), nil }, nil, log)
	for _, c := range []struct {
		size, free      uint64
		full, announced bool
	}{
		{7000, 1 << 30, false, false},
		{quota, 1 << 30, true, true},
		{quota - 1, 1 << 30, false, true}, // writes again, still announced full
		{quota - quota/roomFraction, 1 << 30, false, true},
		{quota - quota/roomFraction - 1, 1 << 30, false, false}, // room by the margin
		{quota - 1, 1 << 30, false, false},                      // announced full only at the quota again
		{100, floor - 1, true, true},
		{100, floor + floor/roomFraction - 1, false, true},
		{100, floor + floor/roomFraction, false, false},
	} {
		size.Store(c.size)
		disk.free.Store(c.free)
		g.quota.refresh()
		g.refresh()
		g.check()
		if full, announced := g.full(), g.announceFull(); full != c.full || announced != c.announced {
			t.Fatalf("store %d bytes, %d free: full %v, announced %v; want %v, %v", c.size, c.free, full, announced, c.full, c.announced)
		}
	}
}
