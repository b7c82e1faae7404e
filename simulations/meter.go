package simulations

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	gosync "sync"
	"sync/atomic"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"
)

// Traffic classes, by stream protocol.
const (
	classGossip = iota // GossipSub (push)
	classSync          // anti-entropy sessions (pull)
	classOther         // anything else a node opens
	numClasses
)

func classOf(p protocol.ID) int {
	s := string(p)
	switch {
	case strings.HasPrefix(s, "/meshsub/"), strings.HasPrefix(s, "/floodsub/"):
		return classGossip
	case strings.HasPrefix(s, "/gossipmesh/sync/"):
		return classSync
	}
	return classOther
}

// meter counts what one simulated node writes to its streams, per traffic
// class: messages (Write calls; GossipSub writes one RPC per call) and
// bytes. It outlives restarts of the node, so counts are cumulative.
type meter struct {
	msgs  [numClasses]atomic.Uint64
	bytes [numClasses]atomic.Uint64
	lost  atomic.Uint64 // gossip messages dropped, sync sessions reset
}

func (m *meter) total() (msgs, bytes uint64) {
	for c := range numClasses {
		msgs += m.msgs[c].Load()
		bytes += m.bytes[c].Load()
	}
	return msgs, bytes
}

// lossModel decides which messages the network loses. mocknet's streams are
// reliable and it has no loss of its own, so loss is modelled where it
// matters to a gossip mesh, at message level:
//
//   - each published message in a GossipSub RPC is dropped with probability
//     p on each hop (the RPC's control part and subscriptions still go), as
//     if the push path ran over datagrams; GossipSub's IHAVE/IWANT gossip and
//     anti-entropy must repair the loss;
//   - each anti-entropy session opened is reset after its first frame with
//     probability p, as a connection reset would; the next round retries.
//
// Byte-level loss inside a reliable stream would only add delay
// (retransmission), which the link latency stands for.
type lossModel struct {
	p   float64
	mu  gosync.Mutex
	rng *rand.Rand
}

func (l *lossModel) drop() bool {
	if l == nil || l.p <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rng.Float64() < l.p
}

// meteredHost wraps a node's host so that every stream the node opens or
// accepts is metered and subject to the loss model.
type meteredHost struct {
	host.Host
	m    *meter
	loss *lossModel
	net  *simNet      // nil: no partitions
	open *openStreams // nil: not tracked
}

// openStreams is every stream of a run not yet closed or reset. mocknet can
// leave a stream opened while its connection was being torn down (a crash)
// blocked for ever; the run resets what is left at its end, so no goroutine
// outlives it (which testing/synctest checks).
type openStreams struct {
	mu gosync.Mutex
	m  map[*meteredStream]struct{}
}

func (o *openStreams) add(s *meteredStream) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[*meteredStream]struct{}{}
	}
	o.m[s] = struct{}{}
}

func (o *openStreams) remove(s *meteredStream) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, s)
}

// resetAll resets every stream still open.
func (o *openStreams) resetAll() {
	o.mu.Lock()
	left := make([]*meteredStream, 0, len(o.m))
	for s := range o.m {
		left = append(left, s)
	}
	o.mu.Unlock()
	for _, s := range left {
		_ = s.Reset()
	}
}

var (
	_ host.Host      = (*meteredHost)(nil)
	_ network.Stream = (*meteredStream)(nil)
)

func (h *meteredHost) wrap(s network.Stream, outbound bool) network.Stream {
	ms := &meteredStream{Stream: s, h: h, class: classOf(s.Protocol()), buf: newSendBuf()}
	h.open.add(ms)
	if outbound && ms.class == classSync && h.loss.drop() {
		ms.resetAfter = 1
	}
	return ms
}

func (h *meteredHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return h.wrap(s, true), nil
}

func (h *meteredHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.wrap(s, false)) })
}

func (h *meteredHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, match, func(s network.Stream) { handler(h.wrap(s, false)) })
}

type meteredStream struct {
	network.Stream
	h          *meteredHost
	class      int
	buf        *sendBuf
	writes     int // Write calls so far; a stream is written by one goroutine
	resetAfter int // > 0: reset the stream on this Write call
}

func (s *meteredStream) Close() error {
	err := s.buf.flush()
	if cerr := s.Stream.Close(); err == nil {
		err = cerr
	}
	s.h.open.remove(s)
	return err
}

func (s *meteredStream) CloseWrite() error {
	err := s.buf.flush()
	if cerr := s.Stream.CloseWrite(); err == nil {
		err = cerr
	}
	return err
}

func (s *meteredStream) Reset() error {
	s.buf.abort(network.ErrReset)
	s.h.open.remove(s)
	return s.Stream.Reset()
}

func (s *meteredStream) ResetWithError(code network.StreamErrorCode) error {
	s.buf.abort(network.ErrReset)
	s.h.open.remove(s)
	return s.Stream.ResetWithError(code)
}

func (s *meteredStream) Write(p []byte) (int, error) {
	s.writes++
	if s.h.net != nil && s.h.net.isSevered(s.h.ID(), s.Conn().RemotePeer()) {
		// The link is cut: nothing more gets through this stream.
		s.Reset()
		return 0, network.ErrReset
	}
	if s.resetAfter > 0 && s.writes > s.resetAfter {
		s.h.m.lost.Add(1)
		s.Reset()
		return 0, network.ErrReset
	}
	out := p
	if s.class == classGossip && s.h.loss != nil && s.h.loss.p > 0 {
		var dropped int
		out, dropped = s.h.loss.filterRPC(p)
		s.h.m.lost.Add(uint64(dropped))
		if out == nil {
			return len(p), nil // the whole RPC was lost in the network
		}
	}
	if err := s.buf.push(s.Stream, out); err != nil {
		return 0, err
	}
	s.h.m.msgs[s.class].Add(1)
	s.h.m.bytes[s.class].Add(uint64(len(out)))
	return len(p), nil
}

// filterRPC drops each published message of one length-prefixed GossipSub
// RPC frame with the loss probability. It returns the frame to send (nil if
// nothing is left) and how many messages it dropped. A frame it cannot parse
// goes through unchanged.
func (l *lossModel) filterRPC(frame []byte) ([]byte, int) {
	size, n := binary.Uvarint(frame)
	if n <= 0 || uint64(len(frame)-n) != size {
		return frame, 0
	}
	var rpc pb.RPC
	if err := proto.Unmarshal(frame[n:], &rpc); err != nil || len(rpc.Publish) == 0 {
		return frame, 0
	}
	kept := rpc.Publish[:0]
	for _, m := range rpc.Publish {
		if !l.drop() {
			kept = append(kept, m)
		}
	}
	dropped := len(rpc.Publish) - len(kept)
	if dropped == 0 {
		return frame, 0
	}
	rpc.Publish = kept
	body, err := proto.Marshal(&rpc)
	if err != nil {
		return frame, 0
	}
	if len(body) == 0 {
		return nil, dropped
	}
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...), dropped
}
