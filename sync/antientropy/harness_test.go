package antientropy_test

import (
	"fmt"
	"maps"
	"math/rand/v2"

	ae "github.com/gossipmesh/gossipmesh/sync/antientropy"
)

// tb is the part of testing.TB and *rapid.T the harness needs.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

type result struct {
	frames, turns int
	bytes         [2]int // bytes sent by side 0 (initiator) and side 1
	statsI        ae.Stats
	statsR        ae.Stats
	// sent counts the records each side sent, by partition and key.
	sent [2]map[uint32]map[string]int
	// stale lists the records that reached a side already holding that
	// very state: sent for nothing.
	stale []string
}

func (r *result) countSent(from int, m ae.Message) {
	if r.sent[from] == nil {
		r.sent[from] = map[uint32]map[string]int{}
	}
	for _, rec := range m.Records {
		p := rec.Partition
		if r.sent[from][p] == nil {
			r.sent[from][p] = map[string]int{}
		}
		r.sent[from][p][string(rec.Key)]++
	}
}

// exchange runs a session between two replicas: the initiator ri and the
// responder rr. Frames travel encoded and are decoded on arrival; each side
// merges Output.Store before its next Step. rng chooses how many frames are
// delivered at a time and which direction goes next when both have frames
// queued. stopAfter > 0 interrupts the session after that many frames.
func exchange(t tb, cfg ae.Config, ri, rr *ae.MemReplica, parts []uint32, rng *rand.Rand, stopAfter int) result {
	t.Helper()
	var res result
	si, out, err := ae.Start(cfg, ri, parts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	sr, err := ae.Accept(cfg, rr)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	sessions := [2]*ae.Session{si, sr}
	reps := [2]*ae.MemReplica{ri, rr}
	var inbox [2][][]byte
	limit := cfg.MaxFrameBytes
	if limit == 0 {
		limit = ae.DefaultConfig().MaxFrameBytes
	}
	enqueue := func(from int, msgs []ae.Message) {
		if len(msgs) > 0 {
			res.turns++
		}
		for _, m := range msgs {
			b, err := ae.AppendMessage(nil, m)
			if err != nil {
				t.Fatalf("AppendMessage: %v", err)
			}
			if len(b) > limit {
				t.Fatalf("frame of %d bytes > MaxFrameBytes %d", len(b), limit)
			}
			res.bytes[from] += len(b)
			res.frames++
			res.countSent(from, m)
			inbox[1-from] = append(inbox[1-from], b)
		}
	}
	enqueue(0, out.Send)
	for steps := 0; len(inbox[0])+len(inbox[1]) > 0; steps++ {
		if steps > 1_000_000 {
			t.Fatalf("session does not terminate")
		}
		to := 0
		switch {
		case len(inbox[0]) == 0:
			to = 1
		case len(inbox[1]) > 0:
			to = rng.IntN(2)
		}
		n := 1 + rng.IntN(len(inbox[to]))
		for range n {
			if stopAfter > 0 && res.frames >= stopAfter {
				return res
			}
			m, err := ae.DecodeMessage(inbox[to][0], limit)
			if err != nil {
				t.Fatalf("DecodeMessage: %v", err)
			}
			inbox[to] = inbox[to][1:]
			out, err := sessions[to].Step(m)
			if err != nil {
				t.Fatalf("side %d Step: %v", to, err)
			}
			for _, r := range out.Store {
				if st, ok := reps[to].State(r.Partition, r.Key); ok && string(st) == string(r.State) {
					res.stale = append(res.stale, fmt.Sprintf("side %d: partition %d key %q", to, r.Partition, r.Key))
				}
				reps[to].Apply(r)
			}
			enqueue(to, out.Send)
		}
	}
	if !si.Done() || !sr.Done() {
		t.Fatalf("queues empty but sessions not done (initiator %v, responder %v)", si.Done(), sr.Done())
	}
	res.statsI, res.statsR = si.Stats(), sr.Stats()
	return res
}

// merged is the expected outcome: the join of both replicas' partitions.
func merged(a, b *ae.MemReplica, p uint32) map[string][]byte {
	out := maps.Clone(a.States(p))
	if out == nil {
		out = map[string][]byte{}
	}
	for k, v := range b.States(p) {
		if old, ok := out[k]; ok {
			v = ae.MaxMerge(old, v)
		}
		out[k] = v
	}
	return out
}

func clone(m *ae.MemReplica, parts []uint32) *ae.MemReplica {
	c := ae.NewMemReplica(ae.MaxMerge)
	for _, p := range parts {
		if st := m.States(p); st != nil {
			c.Load(p, st)
		}
	}
	return c
}

func checkConverged(t tb, a, b *ae.MemReplica, want map[uint32]map[string][]byte) {
	t.Helper()
	for p, w := range want {
		ta, tb2 := a.Tree(p), b.Tree(p)
		if ta == nil || tb2 == nil {
			continue
		}
		if ta.Root() != tb2.Root() {
			t.Fatalf("partition %d: roots differ after the session", p)
		}
		for _, r := range []*ae.MemReplica{a, b} {
			got := r.States(p)
			if len(got) != len(w) {
				t.Fatalf("partition %d: %d keys, want %d", p, len(got), len(w))
			}
			for k, v := range w {
				if string(got[k]) != string(v) {
					t.Fatalf("partition %d key %q: state %x, want %x", p, k, got[k], v)
				}
			}
		}
	}
}

func state(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func key(i int) string { return fmt.Sprintf("key-%08d", i) }
