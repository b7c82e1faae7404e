package antientropy

import (
	"errors"
	"fmt"

	"github.com/gossipmesh/gossipmesh/sync/merkle"
)

// ErrNothingPending is returned by Next when no answer is being sent.
var ErrNothingPending = errors.New("antientropy: no frame pending")

// answer is our turn while Next cuts it into frames: records first (their
// states read as each frame is built), then replies, then items, so that
// streamed records precede their ItemStream.
type answer struct {
	refs    []recRef
	carry   *Record // read for the last frame, which it did not fit
	replies []Reply
	items   []Item
	fin     bool
}

// Pending reports whether Next has frames of our answer to give.
func (s *Session) Pending() bool { return s.out != nil }

// Next returns the next frame of our answer, of at most MaxFrameBytes. It
// calls only Replica.State (for the frame's records); a key gone since the
// answer was made is left out. It fails with ErrRecordTooLarge for a
// record that cannot fit in a frame.
func (s *Session) Next() (Message, error) {
	a := s.out
	if a == nil {
		return Message{}, ErrNothingPending
	}
	limit := s.cfg.MaxFrameBytes - frameOverhead
	var m Message
	size := 0
	fits := func(need int) bool {
		if size > 0 && size+need > limit {
			return false
		}
		size += need
		return true
	}
	for len(a.refs) > 0 || a.carry != nil {
		if a.carry == nil {
			r := a.refs[0]
			a.refs = a.refs[1:]
			st, ok := s.r.State(r.part, []byte(r.key))
			if !ok || r.peer != nil && s.peerHolds(r.part, r.key, r.peer, st) {
				continue // gone, or the peer's state includes ours
			}
			a.carry = &Record{Partition: r.part, Key: []byte(r.key), State: st}
		}
		n := recordSize(*a.carry)
		if n > limit {
			return Message{}, fmt.Errorf("%w: %d-byte record, %d-byte frames", ErrRecordTooLarge, n, s.cfg.MaxFrameBytes)
		}
		if !fits(n) {
			break
		}
		m.Records = append(m.Records, *a.carry)
		a.carry = nil
	}
	if len(a.refs) == 0 && a.carry == nil {
		for len(a.replies) > 0 && fits(replySize(a.replies[0])) {
			m.Replies = append(m.Replies, a.replies[0])
			a.replies = a.replies[1:]
		}
		for len(a.replies) == 0 && len(a.items) > 0 && fits(itemSize(a.items[0])) {
			m.Items = append(m.Items, a.items[0])
			a.items = a.items[1:]
		}
	}
	m.More = len(a.refs) > 0 || a.carry != nil || len(a.replies) > 0 || len(a.items) > 0
	if !m.More {
		m.Fin = a.fin
		s.out = nil
	}
	s.stats.Frames++
	s.stats.RecordsSent += len(m.Records)
	return m, nil
}

// split cuts the initiator's first message into frames of at most
// MaxFrameBytes.
func (s *Session) split(m Message) []Message {
	limit := s.cfg.MaxFrameBytes - frameOverhead
	var out []Message
	cur, size := Message{}, 0
	for _, r := range m.Roots {
		need := uvarintLen(uint64(r.Partition)) + uvarintLen(r.Count) + merkle.HashSize
		if size+need > limit && size > 0 {
			cur.More = true
			out = append(out, cur)
			cur, size = Message{}, 0
		}
		size += need
		cur.Roots = append(cur.Roots, r)
	}
	cur.Fin = m.Fin
	return append(out, cur)
}

// Chunks cuts a received message into pieces that, passed to Receive (or
// Step) in order, act as the message itself: each holds at most maxRecords
// records and about maxBytes of records, replies and items (at least one
// element), and all but the last have More set. Roots, which only an
// initiator's first message carries, stay in the first piece. A caller
// that steps each piece in its own turn of its event loop keeps one large
// frame from holding the loop.
func Chunks(m Message, maxBytes, maxRecords int) []Message {
	var out []Message
	cur, size := Message{Roots: m.Roots}, 0
	cut := func(need int, record bool) {
		full := size+need > maxBytes || record && len(cur.Records) >= maxRecords
		if full && (size > 0 || len(cur.Records) > 0) {
			cur.More = true
			out = append(out, cur)
			cur, size = Message{}, 0
		}
		size += need
	}
	for _, r := range m.Records {
		cut(recordSize(r), true)
		cur.Records = append(cur.Records, r)
	}
	for _, r := range m.Replies {
		cut(replySize(r), false)
		cur.Replies = append(cur.Replies, r)
	}
	for _, it := range m.Items {
		cut(itemSize(it), false)
		cur.Items = append(cur.Items, it)
	}
	cur.More, cur.Fin = m.More, m.Fin
	return append(out, cur)
}
