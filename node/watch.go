package node

import (
	"bytes"
	"context"
	gosync "sync"

	"github.com/gossipmesh/gossipmesh/crdt"
)

// watchBuffer is how many events a watcher may fall behind before it is
// closed; a closed channel tells the watcher to resync by reading.
const watchBuffer = 1024

type watcher struct {
	prefix []byte
	ch     chan Event
}

type watchers struct {
	mu     gosync.Mutex
	next   int
	all    map[int]*watcher
	closed bool
}

// Watch returns a channel of changes to keys starting with prefix, local and
// remote, in commit order. The channel is closed when ctx ends, when the
// node closes, or when the watcher falls more than 1024 events behind.
func (n *Node) Watch(ctx context.Context, prefix []byte) (<-chan Event, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	w := &watcher{prefix: bytes.Clone(prefix), ch: make(chan Event, watchBuffer)}
	id, ok := n.watch.add(w)
	if !ok {
		return nil, ErrClosed
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-n.closing:
		}
		n.watch.remove(id)
	}()
	return w.ch, nil
}

func (ws *watchers) add(w *watcher) (int, bool) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return 0, false
	}
	if ws.all == nil {
		ws.all = make(map[int]*watcher)
	}
	ws.next++
	ws.all[ws.next] = w
	return ws.next, true
}

func (ws *watchers) remove(id int) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w, ok := ws.all[id]; ok {
		delete(ws.all, id)
		close(w.ch)
	}
}

func (ws *watchers) closeAll() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.closed = true
	for id, w := range ws.all {
		delete(ws.all, id)
		close(w.ch)
	}
}

// notify tells matching watchers about a committed change. It never blocks
// the event loop: a watcher whose buffer is full is dropped.
func (ws *watchers) notify(c *change) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if len(ws.all) == 0 {
		return
	}
	ev := Event{Key: c.key, Remote: c.remote, Deleted: c.drop}
	if c.state != nil {
		ev.Kind = kindName(c.state.Kind())
		switch st := c.state.(type) {
		case *crdt.LWW:
			ev.Value, _ = st.Value()
			ev.Deleted = ev.Deleted || st.Deleted()
		case *crdt.Counter:
			ev.Counter = st.Value()
		case *crdt.ORSet:
			ev.Members = st.Members()
		}
	}
	for id, w := range ws.all {
		if !bytes.HasPrefix(c.key, w.prefix) {
			continue
		}
		select {
		case w.ch <- ev:
		default:
			delete(ws.all, id)
			close(w.ch)
		}
	}
}
