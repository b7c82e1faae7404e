package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/gossipmesh/gossipmesh/node"
)

// hub is the one backend watch every watch stream reads from. It numbers
// changes and keeps the most recent ones, so a client that reconnects
// with the id of the last event it saw gets what it missed.
//
// An id is "EPOCH-SEQ". The epoch changes whenever the backend watch
// starts again (after the node ended it), because changes in between were
// not seen: a client resuming from an older epoch, or from further back
// than the history reaches, is sent a "reset" event instead.
type hub struct {
	b        Backend
	size     int
	done     <-chan struct{}
	log      *slog.Logger
	mu       gosync.Mutex
	running  bool
	epoch    string
	next     uint64        // seq of the next change
	history  []record      // seqs next-len(history) .. next-1
	bytes    int           // of the values in history
	changed  chan struct{} // closed at each new change
	ended    chan struct{} // closed when the backend watch ends
	restarts int           // part of the epoch
}

type record struct {
	seq uint64
	ev  node.Event
}

// Bounds of the history a watch can resume from.
const (
	defaultWatchHistory = 4096
	maxHistoryBytes     = 16 << 20
)

func newHub(b Backend, size int, done <-chan struct{}, log *slog.Logger) *hub {
	if size <= 0 {
		size = defaultWatchHistory
	}
	return &hub{b: b, size: size, done: done, log: log}
}

// start begins the backend watch unless it runs. Called with h.mu held.
func (h *hub) start() error {
	if h.running {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	events, err := h.b.Watch(ctx, nil)
	if err != nil {
		cancel()
		return err
	}
	h.running, h.restarts = true, h.restarts+1
	h.epoch = strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.Itoa(h.restarts)
	h.next, h.history, h.bytes = 1, nil, 0
	h.changed, h.ended = make(chan struct{}), make(chan struct{})
	go func() {
		select {
		case <-h.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	go h.run(events, cancel)
	return nil
}

func (h *hub) run(events <-chan node.Event, cancel context.CancelFunc) {
	defer cancel()
	for ev := range events {
		h.add(ev)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running = false
	close(h.ended)
}

func (h *hub) add(ev node.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.history = append(h.history, record{seq: h.next, ev: ev})
	h.next++
	h.bytes += len(ev.Key) + len(ev.Value)
	for _, m := range ev.Members {
		h.bytes += len(m)
	}
	for len(h.history) > h.size || (h.bytes > maxHistoryBytes && len(h.history) > 1) {
		old := h.history[0]
		h.bytes -= len(old.ev.Key) + len(old.ev.Value)
		for _, m := range old.ev.Members {
			h.bytes -= len(m)
		}
		h.history = h.history[1:]
	}
	close(h.changed)
	h.changed = make(chan struct{})
}

// cursor is a client's position: the seq of the next change it wants.
type cursor struct {
	epoch string
	next  uint64
	ended chan struct{}
}

// join starts the backend watch if needed and places a client. from is
// the id of the last event the client saw ("" for none); reset reports
// that it cannot resume there.
func (h *hub) join(from string) (c cursor, reset bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.start(); err != nil {
		return cursor{}, false, err
	}
	c = cursor{epoch: h.epoch, next: h.next, ended: h.ended}
	if from == "" {
		return c, false, nil
	}
	epoch, seq, ok := parseEventID(from)
	if !ok || epoch != h.epoch || seq >= h.next || seq+1 < h.oldest() {
		return c, true, nil
	}
	c.next = seq + 1
	return c, false, nil
}

// oldest is the seq of the oldest change kept. Called with h.mu held.
func (h *hub) oldest() uint64 {
	if len(h.history) == 0 {
		return h.next
	}
	return h.history[0].seq
}

// since returns the changes from c.next on, and a channel closed at the
// next change. lost reports that c fell behind the history.
func (h *hub) since(c *cursor) (recs []record, changed <-chan struct{}, lost bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.epoch != h.epoch {
		return nil, nil, false // its watch ended: c.ended is closed
	}
	if c.next < h.oldest() {
		c.next, lost = h.next, true
	}
	if i := int(c.next - h.oldest()); i < len(h.history) {
		recs = append(recs, h.history[i:]...)
		c.next = h.next
	}
	return recs, h.changed, lost
}

func eventID(epoch string, seq uint64) string { return fmt.Sprintf("%s-%d", epoch, seq) }

func parseEventID(id string) (string, uint64, bool) {
	i := strings.LastIndexByte(id, '-')
	if i <= 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	return id[:i], seq, err == nil
}
