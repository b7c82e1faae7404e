package antientropy_test

import (
	"errors"
	"testing"

	ae "github.com/gossipmesh/gossipmesh/sync/antientropy"
)

// holder is a responder replica of n keys of 20-byte states in partition 0.
func holder(t *testing.T, n int) *ae.MemReplica {
	r := newRand(t)
	h := ae.NewMemReplica(ae.MaxMerge)
	h.Hold(0)
	states := map[string][]byte{}
	for i := range n {
		states[key(i)] = state(r, 20)
	}
	h.Load(0, states)
	return h
}

// askedTooMuch feeds a responder a first message and checks that it is
// refused as a protocol violation before a single record is read.
func askedTooMuch(t *testing.T, name string, first ae.Message) {
	t.Helper()
	states := 0
	h := holder(t, 2000)
	counting := countingReplica{h, &states}
	s, err := ae.Accept(ae.Config{}, counting)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Step(first)
	if !errors.Is(err, ae.ErrProtocol) {
		t.Fatalf("%s: err = %v, want ErrProtocol", name, err)
	}
	if len(out.Send) != 0 || states != 0 {
		t.Fatalf("%s: %d frames sent, %d states read", name, len(out.Send), states)
	}
}

// countingReplica counts the states a session reads.
type countingReplica struct {
	*ae.MemReplica
	n *int
}

func (c countingReplica) State(p uint32, key []byte) ([]byte, bool) {
	*c.n++
	return c.MemReplica.State(p, key)
}

// The amplification request: one message naming whole partitions again and
// again, each item a few bytes, each once worth the partition.
func TestRequestsBeyondTheExchangeAreRefused(t *testing.T) {
	whole := ae.Node{Partition: 0}
	many := func(it ae.Item) ae.Message {
		m := ae.Message{}
		for range 19_480 {
			m.Items = append(m.Items, it)
		}
		return m
	}
	askedTooMuch(t, "explicit streams of a whole partition", many(ae.Item{Kind: ae.ItemStream, Explicit: true, Node: whole}))
	askedTooMuch(t, "explicit empty lists of a whole partition", many(ae.Item{Kind: ae.ItemList, Explicit: true, Node: whole}))
	askedTooMuch(t, "explicit hashes of a whole partition", many(ae.Item{Kind: ae.ItemHashes, Explicit: true, Node: whole, Fanout: 1, Hashes: []byte{1, 1}}))
	var roots ae.Message
	for range 1000 {
		roots.Roots = append(roots.Roots, ae.Root{Partition: 0}) // "empty": stream it all
	}
	askedTooMuch(t, "one partition's root named 1000 times", roots)

	// A stream item is an answer to a node we said was empty; for one we
	// said holds keys, it is refused.
	h := holder(t, 2000)
	s, out, err := ae.Start(ae.Config{}, h, []uint32{0})
	if err != nil {
		t.Fatal(err)
	}
	_ = out
	_, err = s.Step(ae.Message{
		Replies: []ae.Reply{{Kind: ae.ReplyRoot, Status: ae.RootDiffer}},
		Items:   []ae.Item{{Kind: ae.ItemStream}},
	})
	if !errors.Is(err, ae.ErrProtocol) {
		t.Fatalf("stream of a node announced non-empty: err = %v, want ErrProtocol", err)
	}
}

// forger is a hostile initiator that follows the protocol's shape but lies
// in every answer: every child of every expanded node differs, every check
// is wrong (forcing a retry through each window), every list asks for
// every key, and every node it gets to name is listed empty or expanded
// with made-up hashes. It tracks the responder's nodes as the protocol
// requires.
type forger struct {
	mine  []forgerItem // our items of our last turn, awaiting replies
	their []ae.Node    // nodes the responder announced items for
}

type forgerItem struct {
	node   ae.Node
	fanout uint8 // 0: a list
}

func (f *forger) answer(turn []ae.Message) ae.Message {
	var msg ae.Message
	var items []ae.Item
	for _, m := range turn {
		for _, rep := range m.Replies {
			it := f.mine[0]
			f.mine = f.mine[1:]
			if rep.Kind == ae.ReplyHashes {
				for j := range rep.NBits {
					if rep.Bits[j/8]&(1<<(j%8)) != 0 {
						f.their = append(f.their, ae.Node{Partition: 0, Depth: it.node.Depth + it.fanout, Prefix: it.node.Prefix<<it.fanout | uint64(j)})
					}
				}
			}
			if rep.Kind == ae.ReplyRoot && rep.Status == ae.RootDiffer {
				f.their = append(f.their, ae.Node{})
			}
		}
		for _, it := range m.Items {
			n := it.Node
			if !it.Explicit {
				n, f.their = f.their[0], f.their[1:]
			}
			switch it.Kind {
			case ae.ItemHashes:
				k := 1 << it.Fanout
				rep := ae.Reply{Kind: ae.ReplyHashes, NBits: k, Bits: make([]byte, (k+7)/8), Check: 0xbad}
				for j := range k {
					rep.Bits[j/8] |= 1 << (j % 8)
				}
				msg.Replies = append(msg.Replies, rep)
				for j := range k {
					c := ae.Node{Partition: 0, Depth: n.Depth + it.Fanout, Prefix: n.Prefix<<it.Fanout | uint64(j)}
					if c.Depth < 12 {
						items = append(items, ae.Item{Kind: ae.ItemHashes, Fanout: 4, Hashes: []byte{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}})
						f.mine = append(f.mine, forgerItem{c, 4})
					} else {
						items = append(items, ae.Item{Kind: ae.ItemList})
						f.mine = append(f.mine, forgerItem{c, 0})
					}
				}
			case ae.ItemList:
				rep := ae.Reply{Kind: ae.ReplyList, NBits: len(it.Fingerprints), Bits: make([]byte, (len(it.Fingerprints)+7)/8)}
				for j := range len(it.Fingerprints) {
					rep.Bits[j/8] |= 1 << (j % 8)
				}
				msg.Replies = append(msg.Replies, rep)
			}
		}
	}
	msg.Items = items
	return msg
}

// A peer that lies in every answer within the protocol's shape draws each
// record from the responder at most once per session, and the session
// ends: what a session can cost the responder is bounded by what it holds.
func TestForgingPeerGetsEachRecordOnce(t *testing.T) {
	const keys = 5000
	h := holder(t, keys)
	s, err := ae.Accept(ae.Config{}, h)
	if err != nil {
		t.Fatal(err)
	}
	f := &forger{mine: []forgerItem{{}}}
	msg := ae.Message{Roots: []ae.Root{{Partition: 0, Count: 1, Hash: [16]byte{1}}}}
	sent, asked, turns := 0, 0, 0
	for ; turns < 1000 && !s.Done(); turns++ {
		b, err := ae.AppendMessage(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		asked += len(b)
		out, err := s.Step(msg)
		if err != nil {
			t.Fatalf("turn %d: %v", turns, err)
		}
		for _, m := range out.Send {
			b, _ := ae.AppendMessage(nil, m)
			sent += len(b)
		}
		if s.Done() {
			break
		}
		msg = f.answer(out.Send)
	}
	st := s.Stats()
	t.Logf("%d turns: asked with %d bytes, answered with %d bytes, %d records of %d held, %d retries, %d nodes expanded",
		turns, asked, sent, st.RecordsSent, keys, st.Retries, st.Expanded)
	if !s.Done() {
		t.Fatalf("the session did not end after %d turns", turns)
	}
	if st.RecordsSent > keys {
		t.Fatalf("%d records sent for %d keys held: a record was served twice", st.RecordsSent, keys)
	}
}

// An answer's states are read frame by frame: a caller whose peer stops
// reading stops calling Next, and holds one frame, not the whole answer.
func TestNextReadsStatesFrameByFrame(t *testing.T) {
	const keys = 5000
	states := 0
	h := countingReplica{holder(t, keys), &states}
	cfg := ae.Config{MaxFrameBytes: 16 << 10}
	s, err := ae.Accept(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Receive(ae.Message{Roots: []ae.Root{{Partition: 0}}}) // empty: stream it all
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Send) != 0 || states != 0 || !s.Pending() {
		t.Fatalf("Receive sent %d frames and read %d states (pending %v)", len(out.Send), states, s.Pending())
	}
	frames, records := 0, 0
	for s.Pending() {
		m, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		frames++
		records += len(m.Records)
		if b, _ := ae.AppendMessage(nil, m); len(b) > cfg.MaxFrameBytes {
			t.Fatalf("frame of %d bytes", len(b))
		}
		if states > records+1 { // one read ahead: the record that did not fit
			t.Fatalf("after %d frames of %d records, %d states read", frames, records, states)
		}
	}
	if records != keys {
		t.Fatalf("%d records streamed, want %d", records, keys)
	}
	if _, err := s.Next(); !errors.Is(err, ae.ErrNothingPending) {
		t.Fatalf("Next with nothing pending: %v", err)
	}
	t.Logf("%d records in %d frames, %d states read", records, frames, states)
}

// Stepping a session's frames in chunks, as node does to keep its event
// loop responsive, converges as stepping them whole does.
func TestChunkedStepsConverge(t *testing.T) {
	r := newRand(t)
	ra, rb := pair(r, 4000, 1500, "mixed", false)
	want := map[uint32]map[string][]byte{0: merged(ra, rb, 0)}
	a, out, err := ae.Start(ae.Config{}, ra, []uint32{0})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ae.Accept(ae.Config{}, rb)
	sessions, reps := [2]*ae.Session{a, b}, [2]*ae.MemReplica{ra, rb}
	frames, pieces := out.Send, 0
	for to := 1; len(frames) > 0; to = 1 - to {
		var next []ae.Message
		for _, f := range frames {
			for _, piece := range ae.Chunks(f, 512, 7) {
				pieces++
				if len(piece.Records) > 7 {
					t.Fatalf("a piece of %d records", len(piece.Records))
				}
				o, err := sessions[to].Step(piece)
				if err != nil {
					t.Fatalf("side %d: %v", to, err)
				}
				for _, rec := range o.Store {
					reps[to].Apply(rec)
				}
				next = append(next, o.Send...)
			}
		}
		frames = next
	}
	if !a.Done() || !b.Done() {
		t.Fatal("sessions not done")
	}
	checkConverged(t, ra, rb, want)
	t.Logf("%d pieces", pieces)
}
