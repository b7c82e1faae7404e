package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/gossipmesh/gossipmesh/sync/antientropy"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// runSession drives a session to its end. It steps each received frame on
// the event loop in bounded pieces (stepFrame), then builds its answer a
// frame at a time off the loop and hands each to a writer goroutine that
// holds at most one more (sendAnswer): a peer that stops reading stops the
// session from producing frames, and the stall deadline cuts it.
func (n *Node) runSession(ctx context.Context, s network.Stream, f *framer, id peer.ID, sess *antientropy.Session, first antientropy.Output) error {
	start := n.cfg.Now()
	w := startFrameWriter(f)
	fail := func(err error) error {
		_ = s.Reset() // unblocks a write the peer does not read
		if werr := w.finish(); errors.Is(werr, ErrStalled) {
			err = werr // the cause: a read fails once the writer reset the stream
		}
		n.stats.syncFailures.Add(1)
		n.noteStreamError(err)
		return fmt.Errorf("node: sync with %s: %w", id, err)
	}
	for _, m := range first.Send {
		if err := w.send(ctx, f, m); err != nil {
			return fail(err)
		}
	}
	done := first.Done || sess.Done()
	maxFrame := n.syncConfig().MaxFrameBytes
	refused := 0 // records not stored: the store is full
	for !done {
		b, err := f.read()
		if err != nil {
			return fail(err)
		}
		msg, err := antientropy.DecodeMessage(b, maxFrame)
		if err != nil {
			n.stats.deltasInvalid.Add(1)
			return fail(err)
		}
		r, err := n.stepFrame(ctx, id, sess, msg)
		refused += r
		if err != nil {
			n.stats.deltasInvalid.Add(1)
			return fail(err)
		}
		if err := n.sendAnswer(ctx, sess, f, w); err != nil {
			return fail(err)
		}
		done = sess.Done()
	}
	if err := w.finish(); err != nil {
		return fail(err)
	}
	_ = s.CloseWrite()
	// The peer closes its side once it has merged our last records: a
	// session that returns has both sides holding the merge of both.
	awaitPeerEnd(f)
	n.stats.syncSessions.Add(1)
	n.stats.syncDuration.since(n.cfg.Now, start)
	n.stats.syncBytesSent.Add(f.sent)
	n.stats.syncBytesReceived.Add(f.received)
	if refused > 0 {
		// The peer has what it lacked from us, but we did not store what
		// we lacked: no session time is recorded for it.
		return fmt.Errorf("node: sync with %s: %w: %d records not stored", id, ErrStoreFull, refused)
	}
	return nil
}

// Pieces of a received frame stepped per event-loop request: a frame of
// tiny records holds tens of thousands, and merged in one batch they would
// hold every write queued behind it. A piece merges at most one batch's
// share of session records (maxMerged), and has at most a read chunk of
// bytes (items cost tree work in proportion to their bytes).
const (
	stepChunkRecords = maxMerged
	stepChunkBytes   = frameChunk
)

// stepFrame steps one received frame in pieces, each with the merge of its
// records in its own event-loop request, and returns how many records
// the full store refused.
func (n *Node) stepFrame(ctx context.Context, id peer.ID, sess *antientropy.Session, msg antientropy.Message) (int, error) {
	refused := 0
	for _, piece := range antientropy.Chunks(msg, stepChunkBytes, stepChunkRecords) {
		r := 0 // read only once the request is done: a closing node may return before
		err := n.doWeighted(ctx, len(piece.Records), func(tx *txn) error {
			out, err := sess.Receive(piece)
			if err != nil {
				return err
			}
			before := tx.refused // the batch may hold other sessions' merges
			err = n.mergeRecords(tx, id, out.Store)
			r = tx.refused - before
			return err
		})
		if err != nil {
			return refused, err
		}
		refused += r
	}
	return refused, nil
}

// sendAnswer builds the frames of the session's answer and hands them to
// the writer, encoded and wireFrame: a frame's records are let go before
// the frame waits for the writer. Their states are read here, off the
// event loop; since a local write is readable before its fsync, a frame
// with records waits for a durability barrier before it leaves (persist
// before send).
func (n *Node) sendAnswer(ctx context.Context, sess *antientropy.Session, f *framer, w *frameWriter) error {
	for sess.Pending() {
		m, err := sess.Next()
		if err != nil {
			return err
		}
		if len(m.Records) > 0 {
			if err := n.durableBarrier(ctx); err != nil {
				return err
			}
		}
		if err := w.send(ctx, f, m); err != nil {
			return err
		}
	}
	return nil
}

// frameWriter writes a session's frames on its own goroutine, so that
// building the next frame overlaps writing this one. It holds the frame it
// writes; the sender, with the next one wireFrame, waits until it is taken.
type frameWriter struct {
	q        chan wireFrame
	done     chan struct{}
	err      error // set before done is closed
	finished bool  // q is closed; the sender's goroutine only
}

func startFrameWriter(f *framer) *frameWriter {
	w := &frameWriter{q: make(chan wireFrame), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for fr := range w.q {
			if err := f.send(fr); err != nil {
				w.err = err
				if f.stream != nil {
					// The session may be waiting for the peer's next
					// frame, which a peer that does not read never sends.
					_ = f.stream.Reset()
				}
				return
			}
		}
	}()
	return w
}

// send encodes and packs m and queues it; it fails if the writer has
// failed or ctx ends.
func (w *frameWriter) send(ctx context.Context, f *framer, m antientropy.Message) error {
	b, err := antientropy.AppendMessage(nil, m)
	if err != nil {
		return err
	}
	fr, err := f.pack(b)
	if err != nil {
		return err
	}
	select {
	case w.q <- fr:
		return nil
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish waits until the queued frames are written and returns the
// writer's error; later calls return it again. A writer stuck on a peer
// that does not read returns once its stream is reset or its stall
// deadline passes.
func (w *frameWriter) finish() error {
	if !w.finished {
		w.finished = true
		close(w.q)
	}
	<-w.done
	return w.err
}

// awaitPeerEnd reads until the peer ends its side of a finished session
// (or the stream's deadline passes); anything it still sends is ignored.
func awaitPeerEnd(f *framer) {
	for {
		if _, err := f.read(); err != nil {
			return
		}
	}
}
