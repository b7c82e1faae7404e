package antientropy

import (
	"fmt"
	"math/bits"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/sync/merkle"
)

// Replica is the local side's read-only view of its data, implemented by
// node over its store. The session never writes: it returns Records to store.
type Replica interface {
	// Tree returns the Merkle tree of a partition, nil if it is not held.
	Tree(partition uint32) *merkle.Tree
	// State returns the encoded CRDT state of a key.
	State(partition uint32, key []byte) ([]byte, bool)
}

// Output is what a call to Start or Step asks of the caller: send the
// messages in order (each one framed on the stream), merge and store the
// records (and update the partition's tree) before the next Step.
type Output struct {
	Send  []Message
	Store []Record
	Done  bool // the session is over; no further Step is expected
}

// Stats counts what a session did.
type Stats struct {
	Turns           int // turns this side sent
	Frames          int // messages this side sent
	Items           int // items sent
	Expanded        int // nodes this side expanded into child hashes
	Listed          int // nodes this side listed
	Streamed        int // nodes this side streamed
	RecordsSent     int
	RecordsReceived int
	Retries         int // nodes re-sent with another hash window
}

type sentKind uint8

const (
	sentRoot sentKind = iota
	sentHashes
	sentList
)

// sent is an item of ours awaiting the peer's reply.
type sent struct {
	kind   sentKind
	node   Node
	window uint8
	fanout uint8
	keys   []string // sentList: the keys listed, in fingerprint order
}

// gen is a node we must send an item about at the end of the turn.
type gen struct {
	node      Node
	peerEmpty bool
	explicit  bool
	window    uint8
}

type recKey struct {
	part uint32
	key  string
}

// Session is one side of a reconciliation. It is a step machine: it does no
// I/O and keeps no clock; see the package documentation.
type Session struct {
	cfg       Config
	r         Replica
	initiator bool
	started   bool
	done      bool

	awaiting []sent // our items of our last turn, in order, awaiting replies
	expect   []Node // nodes the peer has announced items for, in order

	// The turn being received and our answer being built.
	peerRecs map[recKey]crdt.Digest
	records  []Record
	replies  []Reply
	gens     []gen
	trigger  bool // our answer needs an answer even without items

	stats Stats
}

// Start begins a session as the initiator over the given partitions; those
// the local replica does not hold are skipped. Output.Send holds the first
// message: the roots of all shared partitions.
func Start(cfg Config, r Replica, partitions []uint32) (*Session, Output, error) {
	s, err := newSession(cfg, r)
	if err != nil {
		return nil, Output{}, err
	}
	s.initiator, s.started = true, true
	var roots []Root
	for _, p := range partitions {
		t := r.Tree(p)
		if t == nil {
			continue
		}
		roots = append(roots, Root{Partition: p, Count: uint64(t.Len()), Hash: t.Root()})
		s.awaiting = append(s.awaiting, sent{kind: sentRoot, node: Node{Partition: p}})
	}
	msgs := s.split(Message{Roots: roots, Fin: len(roots) == 0})
	s.stats.Turns++
	s.stats.Frames += len(msgs)
	s.done = len(roots) == 0
	return s, Output{Send: msgs, Done: s.done}, nil
}

// Accept prepares the responder side; its first Step takes the initiator's
// first message.
func Accept(cfg Config, r Replica) (*Session, error) {
	return newSession(cfg, r)
}

func newSession(cfg Config, r Replica) (*Session, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("%w: nil Replica", ErrInvalidConfig)
	}
	return &Session{cfg: cfg, r: r}, nil
}

// Done reports whether the session is over.
func (s *Session) Done() bool { return s.done }

// Stats returns counters of what the session did so far.
func (s *Session) Stats() Stats { return s.stats }

func protocolErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}

// Step feeds one received message. Frames of a turn (More set) only yield
// records to store; the answer comes with the turn's last frame.
func (s *Session) Step(m Message) (Output, error) {
	if s.done {
		return Output{}, ErrDone
	}
	if len(m.Roots) > 0 && (s.initiator || s.started) {
		return Output{}, protocolErr("roots after the first message")
	}
	s.started = true
	var out Output
	if s.peerRecs == nil {
		s.peerRecs = map[recKey]crdt.Digest{}
	}
	for _, rec := range m.Records {
		if s.r.Tree(rec.Partition) == nil {
			continue // not a partition we hold: ignore
		}
		out.Store = append(out.Store, rec)
		s.peerRecs[recKey{rec.Partition, string(rec.Key)}] = crdt.DigestOf(rec.State)
		s.stats.RecordsReceived++
	}
	for _, rep := range m.Replies {
		if len(s.awaiting) == 0 {
			return Output{}, protocolErr("reply to nothing")
		}
		it := s.awaiting[0]
		s.awaiting = s.awaiting[1:]
		if err := s.onReply(it, rep); err != nil {
			return Output{}, err
		}
	}
	for _, root := range m.Roots {
		s.onRoot(root)
	}
	for _, it := range m.Items {
		node := it.Node
		if !it.Explicit {
			if len(s.expect) == 0 {
				return Output{}, protocolErr("item for no announced node")
			}
			node = s.expect[0]
			s.expect = s.expect[1:]
		}
		if err := s.onItem(node, it); err != nil {
			return Output{}, err
		}
	}
	if m.More {
		return out, nil
	}
	if len(s.awaiting) != 0 || len(s.expect) != 0 {
		return Output{}, protocolErr("turn ended with %d items unanswered and %d announced items missing", len(s.awaiting), len(s.expect))
	}
	s.peerRecs = nil
	if m.Fin {
		if len(s.records)+len(s.replies)+len(s.gens) != 0 {
			return Output{}, protocolErr("final message needs an answer")
		}
		s.done = true
		out.Done = true
		return out, nil
	}
	msg := Message{Records: s.records, Replies: s.replies}
	s.awaiting = s.awaiting[:0]
	if err := s.generate(&msg); err != nil {
		return Output{}, err
	}
	msg.Fin = len(msg.Items) == 0 && !s.trigger
	for _, r := range msg.Records {
		if recordSize(r)+frameOverhead > s.cfg.MaxFrameBytes {
			return Output{}, fmt.Errorf("%w: %d-byte record, %d-byte frames", ErrRecordTooLarge, recordSize(r), s.cfg.MaxFrameBytes)
		}
	}
	out.Send = s.split(msg)
	s.stats.Turns++
	s.stats.Frames += len(out.Send)
	s.stats.Items += len(msg.Items)
	s.stats.RecordsSent += len(msg.Records)
	s.records, s.replies, s.gens, s.trigger = nil, nil, nil, false
	if msg.Fin {
		s.done = true
		out.Done = true
	}
	return out, nil
}

// onRoot answers one of the initiator's roots.
func (s *Session) onRoot(root Root) {
	t := s.r.Tree(root.Partition)
	switch {
	case t == nil:
		s.replies = append(s.replies, Reply{Kind: ReplyRoot, Status: RootNotHeld})
	case t.Root() == root.Hash:
		s.replies = append(s.replies, Reply{Kind: ReplyRoot, Status: RootMatch})
	default:
		s.replies = append(s.replies, Reply{Kind: ReplyRoot, Status: RootDiffer})
		s.gens = append(s.gens, gen{node: Node{Partition: root.Partition}, peerEmpty: root.Count == 0})
	}
}

// tree returns the partition's tree, or an empty one if it is not held
// (any more): the session then behaves as if the partition were empty.
func (s *Session) tree(p uint32) *merkle.Tree {
	if t := s.r.Tree(p); t != nil {
		return t
	}
	return merkle.New()
}

func child(n Node, fanout uint8, j int) Node {
	return Node{Partition: n.Partition, Depth: n.Depth + fanout, Prefix: n.Prefix<<fanout | uint64(j)}
}

// trunc is the one-byte hash of a node under a window: 0 exactly when the
// node is empty.
func trunc(sum merkle.Sum, count int, window uint8) byte {
	if count == 0 {
		return 0
	}
	if v := byte(sum.Lo >> (8 * window)); v != 0 {
		return v
	}
	return 1
}

func getBit(b []byte, i int) bool { return b[i/8]&(1<<(i%8)) != 0 }
func setBit(b []byte, i int)      { b[i/8] |= 1 << (i % 8) }

// onItem handles one of the peer's items about node n.
func (s *Session) onItem(n Node, it Item) error {
	switch it.Kind {
	case ItemHashes:
		if int(n.Depth)+int(it.Fanout) > merkle.MaxDepth {
			return protocolErr("node (%d, %d) expanded %d bits", n.Partition, n.Depth, it.Fanout)
		}
		t := s.tree(n.Partition)
		k := int(1) << it.Fanout
		rep := Reply{Kind: ReplyHashes, NBits: k, Bits: make([]byte, (k+7)/8)}
		resid, _ := t.Node(uint(n.Depth), n.Prefix)
		differ := 0
		for j := range k {
			c := child(n, it.Fanout, j)
			sum, cnt := t.Node(uint(c.Depth), c.Prefix)
			if trunc(sum, cnt, it.Window) == it.Hashes[j] {
				continue
			}
			differ++
			setBit(rep.Bits, j)
			resid = resid.Sub(sum)
			s.gens = append(s.gens, gen{node: c, peerEmpty: it.Hashes[j] == 0})
		}
		rep.Check = uint16(resid.Hi)
		s.replies = append(s.replies, rep)
		if differ == 0 {
			s.trigger = true // the peer may need to retry with another window
		}
	case ItemList:
		s.onList(n, it.Fingerprints)
	case ItemStream:
		for e := range s.tree(n.Partition).Entries(uint(n.Depth), n.Prefix) {
			if d, ok := s.peerRecs[recKey{n.Partition, e.Key}]; ok && d == e.Digest {
				continue
			}
			s.sendRecord(n.Partition, e.Key)
		}
	default:
		return protocolErr("item kind %d", it.Kind)
	}
	return nil
}

func (s *Session) onList(n Node, fps []uint32) {
	idx := make(map[uint32][]int, len(fps))
	for i, f := range fps {
		idx[f] = append(idx[f], i)
	}
	rep := Reply{Kind: ReplyList, NBits: len(fps), Bits: make([]byte, (len(fps)+7)/8)}
	for e := range s.tree(n.Partition).Entries(uint(n.Depth), n.Prefix) {
		f := merkle.Fingerprint(e.KeyHash, e.Digest)
		if l := idx[f]; len(l) > 0 {
			idx[f] = l[1:]
			continue
		}
		if d, ok := s.peerRecs[recKey{n.Partition, e.Key}]; ok && d == e.Digest {
			continue
		}
		s.sendRecord(n.Partition, e.Key)
	}
	for _, l := range idx {
		for _, i := range l {
			setBit(rep.Bits, i)
			s.trigger = true
		}
	}
	s.replies = append(s.replies, rep)
}

func (s *Session) sendRecord(p uint32, key string) {
	st, ok := s.r.State(p, []byte(key))
	if !ok {
		return
	}
	s.records = append(s.records, Record{Partition: p, Key: []byte(key), State: st})
}

// onReply handles the peer's reply to our item it.
func (s *Session) onReply(it sent, rep Reply) error {
	switch it.kind {
	case sentRoot:
		if rep.Kind != ReplyRoot {
			return protocolErr("reply kind %d to a root", rep.Kind)
		}
		if rep.Status == RootDiffer {
			s.expect = append(s.expect, it.node)
		}
	case sentHashes:
		k := 1 << it.fanout
		if rep.Kind != ReplyHashes || rep.NBits != k {
			return protocolErr("reply kind %d of %d bits to %d hashes", rep.Kind, rep.NBits, k)
		}
		t := s.tree(it.node.Partition)
		resid, _ := t.Node(uint(it.node.Depth), it.node.Prefix)
		for j := range k {
			if getBit(rep.Bits, j) {
				c := child(it.node, it.fanout, j)
				s.expect = append(s.expect, c)
				sum, _ := t.Node(uint(c.Depth), c.Prefix)
				resid = resid.Sub(sum)
			}
		}
		if uint16(resid.Hi) != rep.Check && it.window < 3 {
			// A truncated hash matched by chance (or the trees moved): look
			// again through another window.
			s.stats.Retries++
			s.gens = append(s.gens, gen{node: it.node, explicit: true, window: it.window + 1})
		}
	case sentList:
		if rep.Kind != ReplyList || rep.NBits != len(it.keys) {
			return protocolErr("reply kind %d of %d bits to %d fingerprints", rep.Kind, rep.NBits, len(it.keys))
		}
		for j, key := range it.keys {
			if getBit(rep.Bits, j) {
				s.sendRecord(it.node.Partition, key)
			}
		}
	}
	return nil
}

// generate turns the nodes found different in this turn into items.
func (s *Session) generate(msg *Message) error {
	few := len(s.gens) <= s.cfg.FewNodes
	listMax, maxFanout := s.cfg.ListMax, s.cfg.Fanout
	if few {
		listMax, maxFanout = s.cfg.FewListMax, 8
	}
	for _, g := range s.gens {
		n := g.node
		t := s.tree(n.Partition)
		_, count := t.Node(uint(n.Depth), n.Prefix)
		it := Item{Explicit: g.explicit, Node: n}
		switch {
		case g.peerEmpty && count > 0:
			it.Kind = ItemStream
			for e := range t.Entries(uint(n.Depth), n.Prefix) {
				s.sendRecord(n.Partition, e.Key)
			}
			s.stats.Streamed++
		case count <= listMax || n.Depth == merkle.MaxDepth:
			it.Kind = ItemList
			st := sent{kind: sentList, node: n}
			for e := range t.Entries(uint(n.Depth), n.Prefix) {
				it.Fingerprints = append(it.Fingerprints, merkle.Fingerprint(e.KeyHash, e.Digest))
				st.keys = append(st.keys, e.Key)
			}
			s.awaiting = append(s.awaiting, st)
			s.stats.Listed++
		default:
			f := bits.Len(uint((count - 1) / listMax)) // ceil(log2(count/listMax))
			f = max(1, min(f, maxFanout, merkle.MaxDepth-int(n.Depth)))
			it.Kind, it.Fanout, it.Window = ItemHashes, uint8(f), g.window
			it.Hashes = make([]byte, 1<<f)
			for j := range it.Hashes {
				c := child(n, it.Fanout, j)
				sum, cnt := t.Node(uint(c.Depth), c.Prefix)
				it.Hashes[j] = trunc(sum, cnt, g.window)
			}
			s.awaiting = append(s.awaiting, sent{kind: sentHashes, node: n, window: g.window, fanout: it.Fanout})
			s.stats.Expanded++
		}
		msg.Items = append(msg.Items, it)
	}
	msg.Records = s.records
	return nil
}

// split cuts a turn into frames of at most MaxFrameBytes, keeping section
// order (roots, records, replies, items) so that streamed records precede
// their ItemStream.
func (s *Session) split(m Message) []Message {
	limit := s.cfg.MaxFrameBytes - frameOverhead
	var out []Message
	cur, size := Message{}, 0
	flush := func(need int) {
		if size+need > limit && size > 0 {
			cur.More = true
			out = append(out, cur)
			cur, size = Message{}, 0
		}
		size += need
	}
	for _, r := range m.Roots {
		flush(uvarintLen(uint64(r.Partition)) + uvarintLen(r.Count) + merkle.HashSize)
		cur.Roots = append(cur.Roots, r)
	}
	for _, r := range m.Records {
		flush(recordSize(r))
		cur.Records = append(cur.Records, r)
	}
	for _, r := range m.Replies {
		flush(replySize(r))
		cur.Replies = append(cur.Replies, r)
	}
	for _, it := range m.Items {
		flush(itemSize(it))
		cur.Items = append(cur.Items, it)
	}
	cur.Fin = m.Fin
	return append(out, cur)
}
