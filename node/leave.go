package node

import (
	"context"
	"encoding/binary"
	"io"
	gosync "sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// leaveProtocol carries a graceful leave: the leaving node itself tells
// each member, over a direct, authenticated stream (so the claim is the
// sender's own, never relayed), that it is going. The body is the mesh ID
// and the sender's incarnation; the answer is one byte.
const leaveProtocol = "/gossipmesh/leave/1.0.0"

// leaveTimeout bounds the whole announcement, so a shutdown never hangs on
// a member that does not answer; those declare us dead by silence instead.
const leaveTimeout = 2 * time.Second

// Leave announces to every live member that this node leaves the mesh,
// waits (at most 2 s, or until ctx ends) for them to take note, then
// closes the node as Close does. Members drop it from placement at once
// instead of suspecting it for Config.SuspectAfter and waiting for
// Config.DeadAfter, and list it as "left".
func (n *Node) Leave(ctx context.Context) error {
	if n.closed.Load() {
		return nil
	}
	n.leaving.Store(true) // no more heartbeats: they would undo the leave
	ctx, cancel := context.WithTimeout(ctx, leaveTimeout)
	var wg gosync.WaitGroup
	for _, id := range n.members.list() {
		wg.Go(func() {
			if err := n.sendLeave(ctx, id); err != nil {
				n.log.Debug("leave not announced", "peer", id, "err", err)
			}
		})
	}
	wg.Wait()
	cancel()
	n.log.Info("left the mesh")
	return n.Close()
}

func (n *Node) leaveMessage() []byte {
	return binary.AppendUvarint(append([]byte(nil), n.meshID[:]...), n.incarnation)
}

func (n *Node) sendLeave(ctx context.Context, id peer.ID) error {
	s, err := n.host.NewStream(ctx, id, leaveProtocol)
	if err != nil {
		return err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if _, err := s.Write(n.leaveMessage()); err != nil {
		return err
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	var ack [1]byte
	_, err = io.ReadFull(s, ack[:])
	return err
}

// handleLeave takes a member's own leave announcement.
func (n *Node) handleLeave(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(leaveTimeout))
	b, err := io.ReadAll(io.LimitReader(s, 64))
	if err != nil || len(b) < len(n.meshID) || [8]byte(b[:8]) != n.meshID {
		s.Reset()
		return
	}
	inc, k := binary.Uvarint(b[8:])
	if k <= 0 || 8+k != len(b) {
		s.Reset()
		return
	}
	from := s.Conn().RemotePeer()
	if n.members.leave(from, inc, n.cfg.Now()) {
		n.tagMember(from, false)
		n.log.Info("member left", "peer", from)
		n.replace()
	}
	_, _ = s.Write([]byte{1})
}
