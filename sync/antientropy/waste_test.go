package antientropy_test

import (
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	ae "github.com/gossipmesh/gossipmesh/sync/antientropy"
)

// needed counts, per side, the records the session must carry: side 0
// sends each key it holds that side 1 lacks or holds in another state, and
// side 1 the converse. A key held in two states may cost one record
// instead of two, when the second sender already holds the first one's
// state after merging it.
func needed(a, b *ae.MemReplica, p uint32) (only [2]int, both int) {
	sa, sb := a.States(p), b.States(p)
	for k, v := range sa {
		w, ok := sb[k]
		switch {
		case !ok:
			only[0]++
		case string(v) != string(w):
			both++
		}
	}
	for k := range sb {
		if _, ok := sa[k]; !ok {
			only[1]++
		}
	}
	return only, both
}

// checkNoWaste asserts that the payload records of a session were exactly
// the records that differ: no side sent a key twice, no record reached a
// side that already held its state, every key held by one side only went
// once, and every key held in two states went once or twice.
func checkNoWaste(t tb, res result, only [2]int, both int) {
	t.Helper()
	if len(res.stale) > 0 {
		t.Fatalf("%d records sent to a side already holding them, first %s", len(res.stale), res.stale[0])
	}
	total := 0
	for side, byPart := range res.sent {
		for p, keys := range byPart {
			for k, n := range keys {
				if n > 1 {
					t.Fatalf("side %d sent partition %d key %q %d times", side, p, k, n)
				}
				total++
			}
		}
	}
	lo, hi := only[0]+only[1]+both, only[0]+only[1]+2*both
	if total < lo || total > hi {
		t.Fatalf("%d records sent; %d + %d held by one side, %d in two states: want %d..%d", total, only[0], only[1], both, lo, hi)
	}
}

// TestRapidNoWastedRecords: over random replica pairs, partitions,
// configurations and delivery orders, the records a session sends are the
// records that differ. Replay a failure with the -rapid.seed it prints.
func TestRapidNoWastedRecords(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := ae.NewMemReplica(ae.MaxMerge), ae.NewMemReplica(ae.MaxMerge)
		nparts := rapid.IntRange(1, 3).Draw(t, "partitions")
		var parts []uint32
		var only [2]int
		both := 0
		for p := range uint32(nparts) {
			parts = append(parts, p)
			a.Hold(p)
			b.Hold(p)
			n := rapid.IntRange(0, 3000).Draw(t, "n")
			differ := rapid.IntRange(0, n).Draw(t, "differ")
			for i := range n {
				k := []byte(key(i))
				v := []byte{byte(i), byte(i >> 8), byte(i >> 16)}
				where := 2
				if i < differ {
					where = rapid.IntRange(0, 3).Draw(t, "where")
				}
				switch where {
				case 0:
					a.Set(p, k, v)
				case 1:
					b.Set(p, k, v)
				case 2:
					a.Set(p, k, v)
					b.Set(p, k, v)
				default:
					a.Set(p, k, v)
					b.Set(p, k, append(v, rapid.Byte().Draw(t, "w")))
				}
			}
			o, bo := needed(a, b, p)
			only[0], only[1], both = only[0]+o[0], only[1]+o[1], both+bo
		}
		cfg := ae.Config{
			MaxFrameBytes: rapid.SampledFrom([]int{4096, 1 << 20}).Draw(t, "frame"),
			Fanout:        rapid.IntRange(1, 8).Draw(t, "fanout"),
			ListMax:       rapid.IntRange(1, 40).Draw(t, "listmax"),
			FewNodes:      rapid.IntRange(0, 20).Draw(t, "fewnodes"),
			FewListMax:    rapid.IntRange(1, 40).Draw(t, "fewlistmax"),
		}
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 1))
		res := exchange(t, cfg, a, b, parts, rng, 0)
		checkNoWaste(t, res, only, both)
		if n := res.statsI.Relisted + res.statsR.Relisted; n != 0 {
			t.Fatalf("%d nodes descended twice", n)
		}
	})
}

// TestRetriesDoNotRedescend: a hash-window retry (a one-byte child hash
// that matched by chance) looks again only at the children not flagged
// yet. Before, it flagged the ones in flight once more, and each was
// descended twice: listed with every fingerprint, often tens of kilobytes
// and a round trip more. Many differences make retries certain.
func TestRetriesDoNotRedescend(t *testing.T) {
	r := newRand(t)
	retries := 0
	for range 4 {
		ra, rb := pair(r, 60_000, 6_000, "missing", false)
		only, both := needed(ra, rb, 0)
		want := map[uint32]map[string][]byte{0: merged(ra, rb, 0)}
		res := exchange(t, ae.Config{}, ra, rb, []uint32{0}, r, 0)
		checkConverged(t, ra, rb, want)
		checkNoWaste(t, res, only, both)
		retries += res.statsI.Retries + res.statsR.Retries
		if n := res.statsI.Relisted + res.statsR.Relisted; n != 0 {
			t.Fatalf("%d nodes descended twice (%d retries); %d + %d bytes in %d turns", n, retries, res.bytes[0], res.bytes[1], res.turns)
		}
		t.Logf("%d turns, %d + %d bytes, %d retries", res.turns, res.bytes[0], res.bytes[1], res.statsI.Retries+res.statsR.Retries)
	}
	if retries == 0 {
		t.Fatal("no retry happened: the test does not exercise them")
	}
}

// TestUpdatesSkipTheStatesThePeerIncludes: a key updated on both sides is
// sent by the side answering a list first; the lister, asked for its state
// in the same turn, skips it when the peer's includes it (Subsumer). So
// about half the updates cost one record instead of two.
func TestUpdatesSkipTheStatesThePeerIncludes(t *testing.T) {
	r := newRand(t)
	const diff = 400
	ra, rb := pair(r, 3000, diff, "update", false)
	only, both := needed(ra, rb, 0)
	want := map[uint32]map[string][]byte{0: merged(ra, rb, 0)}
	res := exchange(t, ae.Config{}, ra, rb, []uint32{0}, r, 0)
	checkConverged(t, ra, rb, want)
	checkNoWaste(t, res, only, both)
	sent := res.statsI.RecordsSent + res.statsR.RecordsSent
	t.Logf("%d updates cost %d records", diff, sent)
	if sent > diff*7/4 {
		t.Fatalf("%d updates cost %d records: the states the peer includes were sent", diff, sent)
	}
}
