package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"
)

// heartbeatEvery keeps idle watch streams alive through proxies and lets
// the server notice a client that went away.
const heartbeatEvery = 15 * time.Second

func eventResponse(id string, ev node.Event) EventResponse {
	out := EventResponse{
		ID: id, Key: string(ev.Key), KeyB64: base64.StdEncoding.EncodeToString(ev.Key),
		Kind: string(ev.Kind), Deleted: ev.Deleted, Remote: ev.Remote,
	}
	switch {
	case ev.Value != nil:
		b := base64.StdEncoding.EncodeToString(ev.Value)
		out.ValueB64 = &b
		if utf8.Valid(ev.Value) {
			v := string(ev.Value)
			out.Value = &v
		}
	case ev.Kind == node.KindCounter:
		c := ev.Counter
		out.Counter = &c
	case ev.Kind == node.KindSet:
		out.MembersB64 = make([]string, len(ev.Members))
		for i, m := range ev.Members {
			out.MembersB64[i] = base64.StdEncoding.EncodeToString(m)
		}
	}
	return out
}

// watchFrom is where a client resumes: the Last-Event-ID header its
// EventSource sends on reconnect, or ?from= for clients that set no header.
func watchFrom(r *http.Request) string {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		return id
	}
	return r.URL.Query().Get("from")
}

// watch streams changes under ?prefix= as server-sent events:
//
//	id: lq3x1-42
//	event: change
//	data: {"id":"lq3x1-42","key":"a","key_b64":"YQ==","kind":"register","value":"1",...}
//
// A client that reconnects with the last id it saw (Last-Event-ID or
// ?from=) first gets the changes it missed. If they are no longer known
// (meshd restarted, or the client was away too long) it gets an
// "event: reset" and should re-read what it cares about; the stream then
// goes on. When the node ends the watch (it closed) the stream ends with
// "event: end".
func (s *server) watch(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, apitypes.CodeInternal, "streaming not supported by this server")
		return
	}
	c, reset, err := s.hub.join(watchFrom(r))
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
	if reset {
		writeReset(w, "cannot resume from "+watchFrom(r)+": meshd restarted or no longer has those changes")
	}
	flusher.Flush()
	s.stream(w, flusher, r, &c, []byte(r.URL.Query().Get("prefix")))
}

func writeReset(w http.ResponseWriter, reason string) {
	data, _ := json.Marshal(apitypes.ResetResponse{Reason: reason})
	fmt.Fprintf(w, "event: reset\ndata: %s\n\n", data)
}

// stream sends the hub's changes under prefix from c on until the client,
// the handler or the node ends the watch.
func (s *server) stream(w http.ResponseWriter, flusher http.Flusher, r *http.Request, c *cursor, prefix []byte) {
	tick := time.NewTicker(heartbeatEvery)
	defer tick.Stop()
	for ending := false; ; {
		recs, changed, lost := s.hub.since(c)
		if lost {
			writeReset(w, "this client fell behind; changes were missed")
		}
		for _, rec := range recs {
			if !bytes.HasPrefix(rec.ev.Key, prefix) {
				continue
			}
			id := eventID(c.epoch, rec.seq)
			data, _ := json.Marshal(eventResponse(id, rec.ev))
			if _, err := fmt.Fprintf(w, "id: %s\nevent: change\ndata: %s\n\n", id, data); err != nil {
				return
			}
		}
		if ending {
			fmt.Fprint(w, "event: end\ndata: {}\n\n")
			flusher.Flush()
			return
		}
		flusher.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-s.opts.Done:
			fmt.Fprint(w, "event: end\ndata: {}\n\n")
			flusher.Flush()
			return
		case <-c.ended:
			ending = true // one more pass sends what came before the end
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
		case <-changed:
		}
	}
}
