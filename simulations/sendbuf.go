package simulations

import (
	gosync "sync"

	"github.com/libp2p/go-libp2p/core/network"
)

// sendBufferBytes is the send buffer of a simulated stream, about a TCP
// socket's.
const sendBufferBytes = 1 << 20

// sendBuf gives a mocknet stream the send buffer a socket has. A mocknet
// stream is an io.Pipe underneath: Write returns only once the peer has read
// the bytes, so two ends that both write a large frame before reading block
// each other for good (and mocknet ignores deadlines). Over TCP or QUIC the
// kernel buffers those writes. Here Write queues up to sendBufferBytes and a
// pump goroutine, started on the first Write, delivers them in order;
// beyond that Write blocks, as a full socket buffer would.
type sendBuf struct {
	mu      gosync.Mutex
	cond    *gosync.Cond
	queue   [][]byte
	size    int // queued plus in flight
	closing bool
	err     error
	started bool
	done    chan struct{} // closed when the pump has exited
}

func newSendBuf() *sendBuf {
	b := &sendBuf{done: make(chan struct{})}
	b.cond = gosync.NewCond(&b.mu)
	return b
}

// push queues p (copied) for delivery on w.
func (b *sendBuf) push(w network.Stream, p []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && !b.closing && b.size > 0 && b.size+len(p) > sendBufferBytes {
		b.cond.Wait()
	}
	if b.err != nil {
		return b.err
	}
	if b.closing {
		return network.ErrReset
	}
	b.queue = append(b.queue, append([]byte(nil), p...))
	b.size += len(p)
	if !b.started {
		b.started = true
		go b.pump(w)
	}
	b.cond.Broadcast()
	return nil
}

func (b *sendBuf) pump(w network.Stream) {
	defer close(b.done)
	for {
		b.mu.Lock()
		for len(b.queue) == 0 && !b.closing && b.err == nil {
			b.cond.Wait()
		}
		if b.err != nil || len(b.queue) == 0 {
			b.mu.Unlock()
			return
		}
		var batch []byte
		for _, q := range b.queue {
			batch = append(batch, q...)
		}
		b.queue = nil
		b.mu.Unlock()

		_, err := w.Write(batch)

		b.mu.Lock()
		b.size -= len(batch)
		if err != nil && b.err == nil {
			b.err = err
		}
		b.cond.Broadcast()
		b.mu.Unlock()
	}
}

// flush waits until everything queued is delivered (or failed) and stops
// the pump. Later pushes fail.
func (b *sendBuf) flush() error {
	b.mu.Lock()
	b.closing = true
	started := b.started
	b.cond.Broadcast()
	b.mu.Unlock()
	if started {
		<-b.done
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// abort drops what is queued; the caller then resets the stream, which
// unblocks a pump stuck in Write.
func (b *sendBuf) abort(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
	}
	b.queue = nil
	b.closing = true
	b.cond.Broadcast()
}
