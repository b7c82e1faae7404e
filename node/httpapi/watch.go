package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gossipmesh/gossipmesh/node"
)

// EventResponse is the JSON data of one "change" server-sent event.
type EventResponse struct {
	Key      string  `json:"key"`
	KeyB64   string  `json:"key_b64"`
	Kind     string  `json:"kind"`
	Deleted  bool    `json:"deleted,omitempty"`
	Value    *string `json:"value,omitempty"`     // register value as text, if valid UTF-8
	ValueB64 *string `json:"value_b64,omitempty"` // register value, base64; absent for other kinds
	Remote   bool    `json:"remote"`
}

// heartbeatEvery keeps idle watch streams alive through proxies and lets
// the server notice a client that went away.
const heartbeatEvery = 15 * time.Second

func eventResponse(ev node.Event) EventResponse {
	out := EventResponse{
		Key: string(ev.Key), KeyB64: base64.StdEncoding.EncodeToString(ev.Key),
		Kind: string(ev.Kind), Deleted: ev.Deleted, Remote: ev.Remote,
	}
	if ev.Value != nil {
		b := base64.StdEncoding.EncodeToString(ev.Value)
		out.ValueB64 = &b
		if utf8.Valid(ev.Value) {
			v := string(ev.Value)
			out.Value = &v
		}
	}
	return out
}

// watch streams changes under ?prefix= as server-sent events:
//
//	event: change
//	data: {"key":"a","key_b64":"YQ==","kind":"register","value":"1",...}
//
// When the node ends the watch (it closed, or this client fell too far
// behind) the stream ends with "event: end"; a client should then re-read
// what it cares about and watch again.
func (s *server) watch(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming not supported by this server")
		return
	}
	ctx := r.Context()
	events, err := s.b.Watch(ctx, []byte(r.URL.Query().Get("prefix")))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// A first comment commits the headers, so the client knows the watch is
	// registered before any change happens.
	fmt.Fprint(w, ": watching\n\n")
	flusher.Flush()

	tick := time.NewTicker(heartbeatEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.opts.Done:
			fmt.Fprint(w, "event: end\ndata: {}\n\n")
			flusher.Flush()
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case ev, ok := <-events:
			if !ok {
				fmt.Fprint(w, "event: end\ndata: {}\n\n")
				flusher.Flush()
				return
			}
			data, _ := json.Marshal(eventResponse(ev))
			if _, err := fmt.Fprintf(w, "event: change\ndata: %s\n\n", data); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}
