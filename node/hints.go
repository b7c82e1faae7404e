package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// kvProtocol lets a node that does not hold a key's partition read the key
// from a holder and hand its writes (hints) off to holders.
const kvProtocol = protocol.ID("/gossipmesh/kv/1.0.0")

// ErrUnavailable: no holder of the key's partition could be reached, and
// this node has nothing of its own for the key.
var ErrUnavailable = errors.New("node: no holder reachable")

const (
	kvGet     = 1
	kvHandoff = 2

	kvOK        = 0
	kvAbsent    = 1
	kvNotHolder = 2
	kvInvalid   = 3
)

// kvTimeout bounds one request to one holder.
const kvTimeout = 3 * time.Second

// kvRecord is a key state on the kv protocol.
type kvRecord struct {
	key, state []byte
}

func appendKVRequest(dst []byte, mesh [8]byte, op byte, recs []kvRecord) []byte {
	dst = append(dst, op)
	dst = append(dst, mesh[:]...)
	dst = binary.AppendUvarint(dst, uint64(len(recs)))
	for _, r := range recs {
		dst = binary.AppendUvarint(dst, uint64(len(r.key)))
		dst = append(dst, r.key...)
		dst = binary.AppendUvarint(dst, uint64(len(r.state)))
		dst = append(dst, r.state...)
	}
	return dst
}

func decodeKVRequest(b []byte) (op byte, mesh [8]byte, recs []kvRecord, err error) {
	bad := func(what string) (byte, [8]byte, []kvRecord, error) {
		return 0, mesh, nil, fmt.Errorf("%w: kv request: %s", ErrBadFrame, what)
	}
	if len(b) < 9 {
		return bad("truncated header")
	}
	op = b[0]
	copy(mesh[:], b[1:9])
	b = b[9:]
	count, k := binary.Uvarint(b)
	if k <= 0 || count > uint64(len(b)) {
		return bad("record count")
	}
	b = b[k:]
	field := func() ([]byte, bool) {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, false
		}
		f := b[k : k+int(l)]
		b = b[k+int(l):]
		return f, true
	}
	for range count {
		key, ok1 := field()
		state, ok2 := field()
		if !ok1 || !ok2 {
			return bad("truncated record")
		}
		recs = append(recs, kvRecord{key, state})
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return op, mesh, recs, nil
}

// kvCall sends one request to a peer and returns the status byte and the
// rest of the response.
func (n *Node) kvCall(ctx context.Context, id peer.ID, op byte, recs []kvRecord) (byte, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	s, err := n.host.NewStream(ctx, id, kvProtocol)
	if err != nil {
		return 0, nil, err
	}
	defer s.Close()
	// Stream reads do not watch ctx: its deadline (kvTimeout, or the
	// caller's shorter one) must be the stream's too.
	deadline, _ := ctx.Deadline()
	f, err := newStreamFramer(s, n.syncConfig().MaxFrameBytes, n.cfg.CompressAbove, deadline, n.cfg.SyncStallTimeout)
	if err != nil {
		return 0, nil, err
	}
	defer f.close()
	if err := f.write(appendKVRequest(nil, n.meshID, op, recs)); err != nil {
		s.Reset()
		return 0, nil, err
	}
	resp, err := f.read()
	if err != nil {
		s.Reset()
		return 0, nil, err
	}
	if len(resp) == 0 {
		return 0, nil, fmt.Errorf("%w: empty kv response", ErrBadFrame)
	}
	return resp[0], resp[1:], nil
}

func (n *Node) handleKV(s network.Stream) {
	defer s.Close()
	f, err := newStreamFramer(s, n.syncConfig().MaxFrameBytes, n.cfg.CompressAbove, time.Now().Add(kvTimeout), n.cfg.SyncStallTimeout)
	if err != nil {
		s.Reset()
		return
	}
	defer f.close()
	from := s.Conn().RemotePeer()
	req, err := f.read()
	if err != nil {
		if isInvalidInput(err) {
			n.refuseKV(from, err)
		}
		n.noteStreamError(err)
		s.Reset()
		return
	}
	status, body := n.serveKV(from, req)
	_ = f.write(append([]byte{status}, body...))
}

// refuseKV counts an invalid kv request against its sender, as invalid
// gossip and sync input are, and returns the answer to it.
func (n *Node) refuseKV(from peer.ID, err error) (byte, []byte) {
	n.stats.deltasInvalid.Add(1)
	n.logInvalid(from, err)
	n.noteInvalid(from)
	return kvInvalid, nil
}

func (n *Node) serveKV(from peer.ID, req []byte) (byte, []byte) {
	op, mesh, recs, err := decodeKVRequest(req)
	switch {
	case err != nil:
		return n.refuseKV(from, err)
	case mesh != n.meshID:
		return n.refuseKV(from, ErrMeshMismatch)
	case len(recs) == 0:
		return n.refuseKV(from, fmt.Errorf("%w: kv request without records", ErrBadFrame))
	}
	ctx, cancel := context.WithTimeout(n.ctx, kvTimeout)
	defer cancel()
	switch op {
	case kvKeys:
		return n.serveKeys(ctx, from, recs[0])
	case kvGet:
		key := recs[0].key
		if err := n.checkKey(key); err != nil {
			return n.refuseKV(from, err)
		}
		if !n.holds(partitionOf(key, n.cfg.Partitions)) || n.quarantined(key) {
			return kvNotHolder, nil
		}
		b, err := loadState(ctx, n.store, key)
		if err != nil {
			return kvInvalid, nil
		}
		if b == nil && n.viewIncomplete(partitionOf(key, n.cfg.Partitions)) {
			return kvNotHolder, nil // gained, not pulled yet: "absent" would mislead
		}
		if b == nil {
			return kvAbsent, nil
		}
		if n.durableBarrier(ctx) != nil {
			return kvInvalid, nil
		}
		return kvOK, b
	case kvHandoff:
		states := make([]crdt.State, len(recs))
		for i, r := range recs {
			if !n.holds(partitionOf(r.key, n.cfg.Partitions)) {
				return kvNotHolder, nil
			}
			s, err := n.checkRecord(r.key, r.state)
			if err != nil {
				return n.refuseKV(from, err)
			}
			states[i] = s
		}
		err := n.do(ctx, func(tx *txn) error {
			tx.durable = true // the sender drops its hint once we answer
			for i, r := range recs {
				if err := tx.mergeHandedOff(r.key, states[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return kvInvalid, nil
		}
		return kvOK, nil
	}
	return n.refuseKV(from, fmt.Errorf("%w: unknown kv operation %d", ErrBadFrame, op))
}

// joinStates returns a ⊔ b (either may be nil: absent) by crdt.Join, the
// rule every path joins states by, without modifying a or b.
func joinStates(a, b crdt.State) crdt.State {
	switch {
	case b == nil:
		return a
	case a == nil || crdt.CompareRank(a, b) < 0:
		return b.Clone()
	case crdt.CompareRank(a, b) > 0:
		return a
	}
	return crdt.Join(a.Clone(), b)
}

// handoffLoop hands hints off to holders: whenever a hint is written, and
// every sync interval for hints whose holders were unreachable.
func (n *Node) handoffLoop() {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.SyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.closing:
			return
		case <-n.handoffKick:
		case <-tick.C:
		}
		if err := n.handOff(n.ctx); err != nil && n.ctx.Err() == nil {
			n.log.Debug("hinted handoff incomplete; will retry", "err", err)
		}
	}
}

func (n *Node) kickHandoff() {
	select {
	case n.handoffKick <- struct{}{}:
	default:
	}
}

// handOff sends every hint to a holder of its partition and deletes the
// hints a holder acknowledged, unless they changed meanwhile. Hints for a
// partition this node has come to hold are merged into its own state.
func (n *Node) handOff(ctx context.Context) error {
	byPart := map[uint32][]kvRecord{}
	err := scanPrefix(ctx, n.store, hintPrefix, func(key, state []byte) error {
		p := partitionOf(key, n.cfg.Partitions)
		byPart[p] = append(byPart[p], kvRecord{key, state})
		return nil
	})
	if err != nil || len(byPart) == 0 {
		return err
	}
	if err := n.durableBarrier(ctx); err != nil {
		return err
	}
	var errs []error
	for p, recs := range byPart {
		for batch := range slices.Chunk(recs, 256) {
			if err := n.handOffBatch(ctx, p, batch); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	return errors.Join(errs...)
}

func (n *Node) handOffBatch(ctx context.Context, p uint32, recs []kvRecord) error {
	local := n.holds(p)
	if !local {
		acked := false
		for _, id := range n.otherHolders(p) {
			if status, _, err := n.kvCall(ctx, id, kvHandoff, recs); err == nil && status == kvOK {
				acked = true
				break
			}
		}
		if !acked {
			return fmt.Errorf("%w for partition %d", ErrUnavailable, p)
		}
	}
	return n.do(ctx, func(tx *txn) error {
		for _, r := range recs {
			cur, err := tx.getHint(r.key)
			if err != nil || cur == nil || string(crdt.Encode(cur)) != string(r.state) {
				continue // rewritten since we read it: hand off again next time
			}
			if local {
				if err := tx.mergeHandedOff(r.key, cur); err != nil {
					return err
				}
				tx.durable = true
			}
			tx.dropHint(r.key)
		}
		return nil
	})
}

// pushToHolders sends key's current state to holders until w of them,
// counting this node if it holds the partition, have it durably.
func (n *Node) pushToHolders(ctx context.Context, key []byte, w int) error {
	p := partitionOf(key, n.cfg.Partitions)
	var state []byte
	var err error
	if n.holds(p) {
		w--
		state, err = loadState(ctx, n.store, key)
	} else {
		state, err = loadRaw(ctx, n.store, hintKey(key))
	}
	if err != nil {
		return err
	}
	if w <= 0 {
		return nil
	}
	if err := n.durableBarrier(ctx); err != nil {
		return err
	}
	if state == nil {
		return fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	for _, id := range n.otherHolders(p) {
		if status, _, err := n.kvCall(ctx, id, kvHandoff, []kvRecord{{key, state}}); err == nil && status == kvOK {
			if w--; w == 0 {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %d more holders of partition %d needed", ErrUnavailable, w, p)
}

// PutReplicated is Put that returns only once w holders of the key's
// partition have the write durably (this node counts when it is a holder).
// Put itself returns once the write is durable here, as a hint if this
// node does not hold the partition.
func (n *Node) PutReplicated(ctx context.Context, key, value []byte, w int) error {
	if err := n.Put(ctx, key, value); err != nil {
		return err
	}
	return n.pushToHolders(ctx, key, w)
}
