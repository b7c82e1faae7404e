package httpapi_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/gossipmesh/gossipmesh/node/httpapi"
)

// openWatch opens a watch stream with the given Last-Event-ID (or none).
func (e *env) openWatch(query, lastID string) *bufio.Scanner {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(e.t.Context(), "GET", e.srv.URL+"/v1/watch"+query, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != 200 {
		e.t.Fatalf("watch: status %d", res.StatusCode)
	}
	return bufio.NewScanner(res.Body)
}

func changeOf(t *testing.T, ev sseEvent) httpapi.EventResponse {
	t.Helper()
	var got httpapi.EventResponse
	if ev.name != "change" || json.Unmarshal([]byte(ev.data), &got) != nil {
		t.Fatalf("event %+v is not a change", ev)
	}
	if ev.id == "" || got.ID != ev.id {
		t.Fatalf("event id %q, data id %q", ev.id, got.ID)
	}
	return got
}

// A client that reconnects with the last id it saw gets exactly the
// changes it missed, by header or by ?from=.
func TestWatchResumesAfterReconnect(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	first := e.openWatch("?prefix=a/", "")
	e.want(e.do("PUT", "/v1/kv/a/1", []byte("one")), 204)
	seen := changeOf(t, readEvent(t, first))
	// Away: these happen while no stream of this client is open.
	e.want(e.do("PUT", "/v1/kv/a/2", []byte("two")), 204)
	e.want(e.do("PUT", "/v1/kv/b/x", []byte("other prefix")), 204)
	e.want(e.do("PUT", "/v1/kv/a/3", []byte("three")), 204)
	for _, resume := range []func() *bufio.Scanner{
		func() *bufio.Scanner { return e.openWatch("?prefix=a/", seen.ID) },
		func() *bufio.Scanner { return e.openWatch("?prefix=a/&from="+url.QueryEscape(seen.ID), "") },
	} {
		sc := resume()
		for _, want := range []string{"a/2", "a/3"} {
			if got := changeOf(t, readEvent(t, sc)); got.Key != want {
				t.Fatalf("resumed with %q, want %q", got.Key, want)
			}
		}
	}
}

// An id the server cannot resume from (another run of meshd, or older
// than its history) gets a reset event, then the live stream.
func TestWatchResetWhenHistoryIsGone(t *testing.T) {
	e := newEnv(t, httpapi.Options{WatchHistory: 2})
	sc := e.openWatch("", "")
	e.want(e.do("PUT", "/v1/kv/k", []byte("0")), 204)
	old := changeOf(t, readEvent(t, sc))
	for _, v := range []string{"1", "2", "3"} {
		e.want(e.do("PUT", "/v1/kv/k", []byte(v)), 204)
	}
	for _, from := range []string{old.ID, "another-run-7", "garbage"} {
		sc := e.openWatch("", from)
		if ev := readEvent(t, sc); ev.name != "reset" {
			t.Fatalf("from %q: first event %+v, want reset", from, ev)
		}
		e.want(e.do("PUT", "/v1/kv/k", []byte("live")), 204)
		if got := changeOf(t, readEvent(t, sc)); *got.Value != "live" {
			t.Fatalf("after reset: %+v", got)
		}
	}
}

// Counter and set events carry the new value.
func TestWatchEventsCarryValues(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	sc := e.openWatch("", "")
	e.want(e.do("POST", "/v1/counter/c", []byte(`{"delta":7}`)), 200)
	e.want(e.do("POST", "/v1/set/s", []byte(`{"member":"m"}`)), 204)
	if got := changeOf(t, readEvent(t, sc)); got.Kind != "counter" || got.Counter == nil || *got.Counter != 7 {
		t.Fatalf("counter event %+v", got)
	}
	if got := changeOf(t, readEvent(t, sc)); got.Kind != "set" || len(got.MembersB64) != 1 || got.MembersB64[0] != "bQ==" {
		t.Fatalf("set event %+v", got)
	}
}
