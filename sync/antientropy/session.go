package antientropy

import (
	"bytes"
	"fmt"
	"math/bits"

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

// Subsumer is an optional extension of a Replica that knows its states'
// lattice. A side asked for a key's state in the same turn as the peer
// sent its own skips the record when the peer's state already includes
// its: a key updated on both sides then costs one record when the side
// answering second is the one behind.
type Subsumer interface {
	// Subsumes reports whether state a includes state b: merging b into a
	// gives a, by the very merge the caller stores with (a wrong true
	// leaves the peer without our state, session after session). It must
	// not fail on states the peer sent (they are validated only when
	// stored): an undecodable state includes nothing.
	Subsumes(partition uint32, key, a, b []byte) bool
}

// Output is what a call to Start, Step or Receive asks of the caller: send
// the messages in order (each one framed on the stream), merge and store
// the records (and update the partition's tree) before the next Step.
// Receive leaves Send empty: the answer's frames come from Next.
type Output struct {
	Send  []Message
	Store []Record
	Done  bool // the session is over once Send (or Next) is sent; no further Step is expected
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
	// Relisted counts nodes named again after this side expanded them
	// (and so listed): an honest peer's retries leave out the children
	// already flagged, so only a lying peer or trees moving under the
	// session make any.
	Relisted int
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
	// What we told the peer was empty: sentRoot, the partition (Count 0);
	// sentHashes, a bitmap of the children whose hash we sent as 0. Only
	// there may the peer answer with ItemStream.
	rootEmpty bool
	empty     []byte
	// flagged marks, for a hash-window retry, the children the peer found
	// different through earlier windows: they are being descended already,
	// so the peer leaves them out of this reply and its check.
	flagged []byte
}

// expected is a node the peer has announced an item for.
type expected struct {
	node  Node
	empty bool // we announced it empty
}

// gen is a node we must send an item about at the end of the turn.
type gen struct {
	node      Node
	peerEmpty bool
	explicit  bool
	window    uint8
	// A hash-window retry keeps the fanout of the first expansion, so that
	// both sides can leave out the children already flagged.
	fanout  uint8
	flagged []byte
}

// peerExpansion is a node the peer expanded into child hashes, as we
// answered it: the window, the fanout and the children we flagged through
// this window and earlier ones. A retry of the node through a later window
// is compared only on the other children, whose descent has not started.
type peerExpansion struct {
	window  uint8
	fanout  uint8
	flagged []byte
}

// recRef is a record to send; its state is read when its frame is built.
type recRef struct {
	part uint32
	key  string
	// The state the peer sent us for the key in its last turn, if it did
	// (nil otherwise): when it includes ours by the time the frame is
	// built, the peer needs no record from us (see peerHolds).
	peer []byte
}

// keyRef names a key of a partition.
type keyRef struct {
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

	awaiting []sent     // our items of our last turn, in order, awaiting replies
	expect   []expected // nodes the peer has announced items for, in order

	// What the peer may ask of us (see the package documentation, Limits).
	retryable  map[Node]peerExpansion // the peer's ItemHashes nodes of its last complete turn
	peerHashes map[Node]peerExpansion // the same, in the turn being received
	expanded   map[Node]struct{}      // nodes we sent ItemHashes for: named again, they are listed
	covered    coverage               // nodes whose records we sent

	// Keys we listed in our last turn, and the states the peer sent for
	// them in its answer: a key it asks for that it also sent may need no
	// record from us (see recRef).
	listed   map[keyRef]struct{}
	peerSent map[keyRef][]byte

	// The turn being received and our answer being built.
	refs    []recRef
	replies []Reply
	gens    []gen
	trigger bool // our answer needs an answer even without items

	out *answer // our answer, while Next has frames of it to give

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
	seen := make(map[uint32]bool, len(partitions))
	for _, p := range partitions {
		t := r.Tree(p)
		if t == nil || seen[p] { // a partition named twice is refused by the peer
			continue
		}
		seen[p] = true
		roots = append(roots, Root{Partition: p, Count: uint64(t.Len()), Hash: t.Root()})
		s.awaiting = append(s.awaiting, sent{kind: sentRoot, node: Node{Partition: p}, rootEmpty: t.Len() == 0})
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
// records to store; the answer comes with the turn's last frame, all its
// frames in Output.Send. It is Receive followed by Next until nothing is
// pending.
func (s *Session) Step(m Message) (Output, error) {
	out, err := s.Receive(m)
	if err != nil {
		return Output{}, err
	}
	for s.Pending() {
		f, err := s.Next()
		if err != nil {
			return Output{}, err
		}
		out.Send = append(out.Send, f)
	}
	return out, nil
}

// Receive feeds one received message, as Step does, but leaves the frames
// of the answer to Next: their records are read from the Replica only as
// each frame is built, so a caller whose peer stops reading stops calling
// Next and holds at most one frame. Every frame of the answer must be
// taken before the next Receive.
func (s *Session) Receive(m Message) (Output, error) {
	switch {
	case s.done:
		return Output{}, ErrDone
	case s.out != nil:
		return Output{}, protocolErr("message received while our answer is still being sent")
	case len(m.Roots) > 0 && (s.initiator || s.started):
		return Output{}, protocolErr("roots after the first message")
	}
	s.started = true
	var out Output
	for _, rec := range m.Records {
		if s.r.Tree(rec.Partition) == nil {
			continue // not a partition we hold: ignore
		}
		out.Store = append(out.Store, rec)
		s.stats.RecordsReceived++
		s.notePeerState(rec)
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
	if err := s.onRoots(m.Roots); err != nil {
		return Output{}, err
	}
	if err := s.onItems(m.Items); err != nil {
		return Output{}, err
	}
	if m.More {
		return out, nil
	}
	if len(s.awaiting) != 0 || len(s.expect) != 0 {
		return Output{}, protocolErr("turn ended with %d items unanswered and %d announced items missing", len(s.awaiting), len(s.expect))
	}
	s.retryable, s.peerHashes = s.peerHashes, nil
	s.listed, s.peerSent = nil, nil
	if m.Fin {
		if len(s.refs)+len(s.replies)+len(s.gens) != 0 {
			return Output{}, protocolErr("final message needs an answer")
		}
		s.done = true
		out.Done = true
		return out, nil
	}
	s.answer()
	out.Done = s.done
	return out, nil
}

// answer turns what the received turn asked for into our answer, whose
// frames Next gives.
func (s *Session) answer() {
	s.awaiting = s.awaiting[:0]
	items := s.generate()
	a := &answer{refs: s.refs, replies: s.replies, items: items, fin: len(items) == 0 && !s.trigger}
	s.out = a
	s.stats.Turns++
	s.stats.Items += len(items)
	s.refs, s.replies, s.gens, s.trigger = nil, nil, nil, false
	if a.fin {
		s.done = true
	}
}

// onRoots answers the initiator's roots; a partition named twice would
// have us stream it twice.
func (s *Session) onRoots(roots []Root) error {
	if len(roots) == 0 {
		return nil
	}
	seen := make(map[uint32]struct{}, len(roots))
	for _, root := range roots {
		if _, dup := seen[root.Partition]; dup {
			return protocolErr("partition %d named twice", root.Partition)
		}
		seen[root.Partition] = struct{}{}
	}
	for _, root := range roots {
		s.onRoot(root)
	}
	return nil
}

// onItems handles the peer's items: each is about the next node the
// peer's replies announced or, explicit, about a node of the peer's own
// last turn that it looks at again through another hash window.
func (s *Session) onItems(items []Item) error {
	for _, it := range items {
		var e expected
		var prev peerExpansion
		if it.Explicit {
			var err error
			if prev, err = s.takeRetry(it); err != nil {
				return err
			}
			e.node = it.Node
		} else {
			if len(s.expect) == 0 {
				return protocolErr("item for no announced node")
			}
			e = s.expect[0]
			s.expect = s.expect[1:]
		}
		if it.Kind == ItemStream && !e.empty {
			return protocolErr("stream of node (%d, %d, %#x), which we did not announce empty", e.node.Partition, e.node.Depth, e.node.Prefix)
		}
		if err := s.onItem(e.node, it, prev); err != nil {
			return err
		}
	}
	return nil
}

// takeRetry checks an explicit item: only a hash-window retry of one of
// the nodes the peer expanded in its last turn, once, is one. It returns
// how we answered the node then: a retry through hashes of the same
// fanout leaves out the children flagged before.
func (s *Session) takeRetry(it Item) (peerExpansion, error) {
	prev, ok := s.retryable[it.Node]
	n := it.Node
	switch {
	case !ok:
		return prev, protocolErr("explicit item for node (%d, %d, %#x), not one the peer expanded in its last turn", n.Partition, n.Depth, n.Prefix)
	case it.Kind == ItemStream:
		return prev, protocolErr("explicit stream item")
	case it.Kind == ItemHashes && it.Window <= prev.window:
		return prev, protocolErr("retry of node (%d, %d, %#x) through window %d after %d", n.Partition, n.Depth, n.Prefix, it.Window, prev.window)
	}
	delete(s.retryable, it.Node)
	if it.Fanout != prev.fanout {
		// Other children than those flagged (a peer of an earlier version
		// chose the fanout afresh): all are compared, as on a first visit.
		prev.flagged = nil
	}
	return prev, nil
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

// onItem handles one of the peer's items about node n; prev is how we
// answered n before, when the item is a retry.
func (s *Session) onItem(n Node, it Item, prev peerExpansion) error {
	switch it.Kind {
	case ItemHashes:
		if int(n.Depth)+int(it.Fanout) > merkle.MaxDepth {
			return protocolErr("node (%d, %d) expanded %d bits", n.Partition, n.Depth, it.Fanout)
		}
		if s.peerHashes == nil {
			s.peerHashes = map[Node]peerExpansion{}
		}
		s.peerHashes[n] = peerExpansion{window: it.Window, fanout: it.Fanout, flagged: s.onHashes(n, it, prev.flagged)}
	case ItemList:
		s.onList(n, it.Fingerprints)
	case ItemStream:
		// The peer's records for n came before this item. We announced n
		// empty, so we have nothing of the peer's to answer with: what n
		// gained here since is a local write or another session's, which
		// gossip and the next session carry.
	default:
		return protocolErr("item kind %d", it.Kind)
	}
	return nil
}

// onHashes answers the peer's child hashes of n: the differing children
// are flagged and each gets an item of ours. Children flagged through an
// earlier window (before, nil on a first expansion) are being descended
// already: they are neither compared nor flagged again, and the check
// covers the others only. It returns the children flagged so far.
func (s *Session) onHashes(n Node, it Item, before []byte) []byte {
	t := s.tree(n.Partition)
	k := int(1) << it.Fanout
	rep := Reply{Kind: ReplyHashes, NBits: k, Bits: make([]byte, (k+7)/8)}
	flagged := make([]byte, len(rep.Bits))
	copy(flagged, before)
	resid, _ := t.Node(uint(n.Depth), n.Prefix)
	differ := 0
	for j := range k {
		c := child(n, it.Fanout, j)
		sum, cnt := t.Node(uint(c.Depth), c.Prefix)
		if getBit(flagged, j) {
			resid = resid.Sub(sum)
			continue
		}
		if trunc(sum, cnt, it.Window) == it.Hashes[j] {
			continue
		}
		differ++
		setBit(rep.Bits, j)
		setBit(flagged, j)
		resid = resid.Sub(sum)
		s.gens = append(s.gens, gen{node: c, peerEmpty: it.Hashes[j] == 0})
	}
	rep.Check = uint16(resid.Hi)
	s.replies = append(s.replies, rep)
	if differ == 0 {
		s.trigger = true // the peer may need to retry with another window
	}
	return flagged
}

// onList answers the peer's fingerprints of n: we send our keys it lacks
// and flag the fingerprints we lack.
func (s *Session) onList(n Node, fps []uint32) {
	idx := make(map[uint32][]int, len(fps))
	for i, f := range fps {
		idx[f] = append(idx[f], i)
	}
	rep := Reply{Kind: ReplyList, NBits: len(fps), Bits: make([]byte, (len(fps)+7)/8)}
	served := s.covered.covers(n)
	deeper := !served && s.covered.deeper(n.Partition, n.Depth)
	for e := range s.tree(n.Partition).Entries(uint(n.Depth), n.Prefix) {
		f := merkle.Fingerprint(e.KeyHash, e.Digest)
		if l := idx[f]; len(l) > 0 {
			idx[f] = l[1:]
			continue
		}
		if served || deeper && s.covered.coversKey(n.Partition, e.KeyHash, n.Depth) {
			continue
		}
		s.sendRecord(n.Partition, e.Key)
	}
	s.covered.add(n)
	for _, l := range idx {
		for _, i := range l {
			setBit(rep.Bits, i)
			s.trigger = true
		}
	}
	s.replies = append(s.replies, rep)
}

// stream sends every record of n not served yet in this session.
func (s *Session) stream(n Node) {
	if s.covered.covers(n) {
		return
	}
	deeper := s.covered.deeper(n.Partition, n.Depth)
	for e := range s.tree(n.Partition).Entries(uint(n.Depth), n.Prefix) {
		if !deeper || !s.covered.coversKey(n.Partition, e.KeyHash, n.Depth) {
			s.sendRecord(n.Partition, e.Key)
		}
	}
	s.covered.add(n)
}

func (s *Session) sendRecord(p uint32, key string) {
	s.refs = append(s.refs, recRef{part: p, key: key, peer: s.peerSent[keyRef{p, key}]})
}

// notePeerState keeps a received state whose key we listed: the peer may
// ask for our state of the key in the same turn. It is copied, since the
// received message may alias a buffer the caller reuses; only keys we
// listed are kept, so the copies are bounded by our own lists.
func (s *Session) notePeerState(rec Record) {
	k := keyRef{rec.Partition, string(rec.Key)}
	if _, ok := s.listed[k]; !ok {
		return
	}
	if s.peerSent == nil {
		s.peerSent = map[keyRef][]byte{}
	}
	s.peerSent[k] = bytes.Clone(rec.State)
}

// peerHolds reports whether the peer, which sent us state peer for a key,
// needs no record of our state st: ours is the very state it sent (we
// merged it), or, if the Replica can tell, the peer's includes ours.
func (s *Session) peerHolds(part uint32, key string, peer, st []byte) bool {
	if bytes.Equal(peer, st) {
		return true
	}
	sub, ok := s.r.(Subsumer)
	return ok && sub.Subsumes(part, []byte(key), peer, st)
}

// onReply handles the peer's reply to our item it.
func (s *Session) onReply(it sent, rep Reply) error {
	switch it.kind {
	case sentRoot:
		if rep.Kind != ReplyRoot {
			return protocolErr("reply kind %d to a root", rep.Kind)
		}
		if rep.Status == RootDiffer {
			s.expect = append(s.expect, expected{node: it.node, empty: it.rootEmpty})
		}
	case sentHashes:
		k := 1 << it.fanout
		if rep.Kind != ReplyHashes || rep.NBits != k {
			return protocolErr("reply kind %d of %d bits to %d hashes", rep.Kind, rep.NBits, k)
		}
		s.onHashesReply(it, rep)
	case sentList:
		if rep.Kind != ReplyList || rep.NBits != len(it.keys) {
			return protocolErr("reply kind %d of %d bits to %d fingerprints", rep.Kind, rep.NBits, len(it.keys))
		}
		served := s.covered.covers(it.node)
		for j, key := range it.keys {
			if getBit(rep.Bits, j) && !served && !s.covered.coversKey(it.node.Partition, merkle.KeyHash([]byte(key)), it.node.Depth) {
				s.sendRecord(it.node.Partition, key)
			}
		}
		s.covered.add(it.node)
	}
	return nil
}

// onHashesReply takes the peer's differing children of our expansion it,
// and retries the node through the next window if the peer's check of the
// others disagrees with ours. An honest peer flags no child flagged
// through an earlier window; one that does is expected to send its item
// again, as it says (the node is then listed, see generate).
func (s *Session) onHashesReply(it sent, rep Reply) {
	t := s.tree(it.node.Partition)
	flagged := make([]byte, len(rep.Bits))
	copy(flagged, it.flagged)
	resid, _ := t.Node(uint(it.node.Depth), it.node.Prefix)
	for j := range 1 << it.fanout {
		again := getBit(flagged, j)
		if !getBit(rep.Bits, j) && !again {
			continue
		}
		c := child(it.node, it.fanout, j)
		if getBit(rep.Bits, j) {
			s.expect = append(s.expect, expected{node: c, empty: getBit(it.empty, j)})
		}
		setBit(flagged, j)
		sum, _ := t.Node(uint(c.Depth), c.Prefix)
		resid = resid.Sub(sum)
	}
	if uint16(resid.Hi) != rep.Check && it.window < 3 {
		// A truncated hash matched by chance (or the trees moved): look
		// again through another window, at the children not flagged yet.
		s.stats.Retries++
		s.gens = append(s.gens, gen{node: it.node, explicit: true, window: it.window + 1, fanout: it.fanout, flagged: flagged})
	}
}

// generate turns the nodes found different in this turn into items.
func (s *Session) generate() []Item {
	few := len(s.gens) <= s.cfg.FewNodes
	listMax, maxFanout := s.cfg.ListMax, s.cfg.Fanout
	if few {
		listMax, maxFanout = s.cfg.FewListMax, 8
	}
	var items []Item
	for _, g := range s.gens {
		n := g.node
		_, count := s.tree(n.Partition).Node(uint(n.Depth), n.Prefix)
		_, again := s.expanded[n]
		switch {
		case g.peerEmpty && count > 0:
			items = append(items, Item{Explicit: g.explicit, Node: n, Kind: ItemStream})
			s.stream(n)
			s.stats.Streamed++
		case count <= listMax || n.Depth == merkle.MaxDepth || again && !g.explicit:
			// A node expanded before and named again (a retry above it
			// flagged it once more) is listed, not expanded again: a peer
			// forcing retries cannot make the descent grow without end.
			items = append(items, s.list(g, count, again && !g.explicit))
		default:
			items = append(items, s.expand(g, count, listMax, maxFanout))
		}
	}
	return items
}

// list makes the ItemList of g's node: a fingerprint per key. A node named
// again that is too large to list in a fraction of a frame is listed
// empty: its first visit exchanged our keys, the peer sends what it has
// not sent yet.
func (s *Session) list(g gen, count int, again bool) Item {
	n := g.node
	it := Item{Explicit: g.explicit, Node: n, Kind: ItemList}
	st := sent{kind: sentList, node: n}
	if !again || count <= s.maxListed() {
		if s.listed == nil {
			s.listed = map[keyRef]struct{}{}
		}
		for e := range s.tree(n.Partition).Entries(uint(n.Depth), n.Prefix) {
			it.Fingerprints = append(it.Fingerprints, merkle.Fingerprint(e.KeyHash, e.Digest))
			st.keys = append(st.keys, e.Key)
			s.listed[keyRef{n.Partition, e.Key}] = struct{}{}
		}
	}
	s.awaiting = append(s.awaiting, st)
	s.stats.Listed++
	if again {
		s.stats.Relisted++
	}
	return it
}

// maxListed is the most keys one ItemList carries: a quarter of a frame.
func (s *Session) maxListed() int { return (s.cfg.MaxFrameBytes - frameOverhead) / 4 / 4 }

// expand makes the ItemHashes of g's node.
func (s *Session) expand(g gen, count, listMax, maxFanout int) Item {
	n := g.node
	t := s.tree(n.Partition)
	f := bits.Len(uint((count - 1) / listMax)) // ceil(log2(count/listMax))
	f = max(1, min(f, maxFanout, merkle.MaxDepth-int(n.Depth)))
	if g.fanout != 0 {
		f = int(g.fanout) // a retry: the peer compares the children not flagged yet
	}
	it := Item{Explicit: g.explicit, Node: n, Kind: ItemHashes, Fanout: uint8(f), Window: g.window}
	it.Hashes = make([]byte, 1<<f)
	st := sent{kind: sentHashes, node: n, window: g.window, fanout: it.Fanout, empty: make([]byte, (len(it.Hashes)+7)/8), flagged: g.flagged}
	for j := range it.Hashes {
		c := child(n, it.Fanout, j)
		sum, cnt := t.Node(uint(c.Depth), c.Prefix)
		it.Hashes[j] = trunc(sum, cnt, g.window)
		if it.Hashes[j] == 0 {
			setBit(st.empty, j)
		}
	}
	s.awaiting = append(s.awaiting, st)
	if s.expanded == nil {
		s.expanded = map[Node]struct{}{}
	}
	s.expanded[n] = struct{}{}
	s.stats.Expanded++
	return it
}
