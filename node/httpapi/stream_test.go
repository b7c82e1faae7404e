package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/gossipmesh/gossipmesh/node/backup"
	"github.com/gossipmesh/gossipmesh/node/httpapi"
	"github.com/prometheus/client_golang/prometheus"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // poll interval, not a wait for an outcome
	}
}

// sseEvent is one parsed server-sent event.
type sseEvent struct{ id, name, data string }

func readEvent(t *testing.T, sc *bufio.Scanner) sseEvent {
	t.Helper()
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name != "" {
				return ev
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		}
	}
	t.Fatalf("stream ended: %v", sc.Err())
	return ev
}

func TestWatch(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+"/v1/watch?prefix=a/", nil)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("watch: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	waitFor(t, "watch registered", func() bool { return e.fake.Watchers() == 1 })
	e.want(e.do("PUT", "/v1/kv/b/ignored", []byte("x")), 204)
	e.want(e.do("PUT", "/v1/kv/a/1", []byte("one")), 204)
	e.want(e.do("DELETE", "/v1/kv/a/1", nil), 204)

	sc := bufio.NewScanner(res.Body)
	ev := readEvent(t, sc)
	var got httpapi.EventResponse
	if err := json.Unmarshal([]byte(ev.data), &got); err != nil || ev.name != "change" {
		t.Fatalf("event %+v: %v", ev, err)
	}
	if got.Key != "a/1" || got.Kind != "register" || got.Value == nil || *got.Value != "one" || got.Deleted {
		t.Fatalf("first event = %+v", got)
	}
	ev = readEvent(t, sc)
	got = httpapi.EventResponse{}
	if err := json.Unmarshal([]byte(ev.data), &got); err != nil || got.Key != "a/1" || !got.Deleted {
		t.Fatalf("second event %+v: %v", ev, err)
	}
	e.fake.CloseWatches()
	if ev := readEvent(t, sc); ev.name != "end" {
		t.Fatalf("after close: event %q, want end", ev.name)
	}
}

func TestWatchEndsOnDone(t *testing.T) {
	done := make(chan struct{})
	e := newEnv(t, httpapi.Options{Done: done})
	res, err := e.srv.Client().Get(e.srv.URL + "/v1/watch")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	close(done)
	if ev := readEvent(t, bufio.NewScanner(res.Body)); ev.name != "end" {
		t.Fatalf("event %q, want end", ev.name)
	}
}

// Every stream reads the one backend watch; a client that goes away does
// not disturb the others.
func TestWatchStreamsShareOneBackendWatch(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	gone, err := e.srv.Client().Get(e.srv.URL + "/v1/watch")
	if err != nil {
		t.Fatal(err)
	}
	stays, err := e.srv.Client().Get(e.srv.URL + "/v1/watch")
	if err != nil {
		t.Fatal(err)
	}
	defer stays.Body.Close()
	if n := e.fake.Watchers(); n != 1 {
		t.Fatalf("%d backend watches for two streams, want 1", n)
	}
	gone.Body.Close()
	e.want(e.do("PUT", "/v1/kv/k", []byte("v")), 204)
	if ev := readEvent(t, bufio.NewScanner(stays.Body)); ev.name != "change" || !strings.Contains(ev.data, `"key":"k"`) {
		t.Fatalf("event %+v", ev)
	}
}

func TestWatchError(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	e.fake.Err = node.ErrClosed
	e.want(e.do("GET", "/v1/watch", nil), 503)
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	extra := prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_extra_total", Help: "test"})
	reg.MustRegister(extra)
	e := newEnv(t, httpapi.Options{Registry: reg})
	e.fake.SetStats(node.Stats{
		Puts: 7, Gets: 3, DeltasIn: 11, SyncSessions: 2, KeysRepaired: 5,
		BytesSent: map[string]uint64{"/gossipmesh/sync/1": 1234}, BytesReceived: map[string]uint64{"/gossipmesh/sync/1": 99},
	})
	e.want(e.do("PUT", "/v1/kv/a", []byte("v")), 204)
	body := string(e.want(e.do("GET", "/metrics", nil), 200).body)
	for _, want := range []string{
		"gossipmesh_puts_total 8", // 7 set + 1 put through the fake
		"gossipmesh_gets_total 3",
		"gossipmesh_deltas_in_total 11",
		"gossipmesh_sync_sessions_total 2",
		"gossipmesh_keys_repaired_total 5",
		`gossipmesh_bytes_sent_total{protocol="/gossipmesh/sync/1"} 1234`,
		`gossipmesh_bytes_received_total{protocol="/gossipmesh/sync/1"} 99`,
		`gossipmesh_partition_keys{partition="0"} 1`,
		"gossipmesh_keys 1",
		"gossipmesh_peers 0",
		"gossipmesh_status_up 1",
		"meshd_extra_total 0",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Without a registry the Go runtime metrics are served.
	e2 := newEnv(t, httpapi.Options{})
	if body := string(e2.want(e2.do("GET", "/metrics", nil), 200).body); !strings.Contains(body, "go_goroutines") {
		t.Error("default metrics lack go_goroutines")
	}
}

func TestStoreQuotaInStatusAndMetrics(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	e.fake.SetStore(node.Status{StoreFull: true, StoreFullReason: node.FullQuota, StoreBytes: 5000, MaxStoreBytes: 4096, AnnouncedFull: true})
	st := decode[httpapi.StatusResponse](t, e.want(e.do("GET", "/v1/status", nil), 200))
	if !st.StoreFull || st.StoreFullReason != "quota" || st.StoreBytes != 5000 || st.MaxStoreBytes != 4096 || !st.AnnouncedFull {
		t.Fatalf("status at the quota: %+v", st)
	}
	body := string(e.want(e.do("GET", "/metrics", nil), 200).body)
	for _, want := range []string{
		"gossipmesh_store_full 1",
		`gossipmesh_store_full_reason{reason="quota"} 1`,
		`gossipmesh_store_full_reason{reason="disk_floor"} 0`,
		"gossipmesh_store_bytes 5000",
		"gossipmesh_store_max_bytes 4096",
		"gossipmesh_store_full_announced 1",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics at the quota lack %q", want)
		}
	}
	e.fake.SetStore(node.Status{StoreFull: true, StoreFullReason: node.FullDiskFloor})
	body = string(e.want(e.do("GET", "/metrics", nil), 200).body)
	if !strings.Contains(body, `gossipmesh_store_full_reason{reason="disk_floor"} 1`+"\n") || !strings.Contains(body, `gossipmesh_store_full_reason{reason="quota"} 0`+"\n") {
		t.Errorf("metrics below the disk floor:\n%s", body)
	}
}

func TestBackupRestore(t *testing.T) {
	src := newEnv(t, httpapi.Options{})
	src.want(src.do("PUT", "/v1/kv/a", []byte("1")), 204)
	src.want(src.do("POST", "/v1/counter/c", []byte(`{"delta":3}`)), 200)
	src.want(src.do("POST", "/v1/set/s", []byte(`{"member":"m"}`)), 204)
	src.want(src.do("PUT", "/v1/kv/gone", []byte("x")), 204)
	src.want(src.do("DELETE", "/v1/kv/gone", nil), 204)

	file := src.want(src.do("POST", "/v1/backup", nil), 200).body
	if n, err := backup.Verify(bytes.NewReader(file)); err != nil || n != 4 {
		t.Fatalf("backup verifies as %d, %v; want 4 records", n, err)
	}

	dst := newEnv(t, httpapi.Options{TempDir: t.TempDir()})
	for range 2 { // restoring twice is safe
		r := decode[httpapi.RestoreResponse](t, dst.want(dst.do("POST", "/v1/restore", file), 200))
		if r.Records != 4 {
			t.Fatalf("restored %d records, want 4", r.Records)
		}
	}
	rootOf := func(e *env) string {
		return decode[httpapi.StatusResponse](t, e.want(e.do("GET", "/v1/status", nil), 200)).Partitions[0].Root
	}
	if rootOf(src) != rootOf(dst) {
		t.Fatal("roots differ after restore")
	}

	// Corrupted and truncated files are refused and change nothing.
	fresh := newEnv(t, httpapi.Options{})
	bad := bytes.Clone(file)
	bad[len(bad)/2] ^= 1
	fresh.want(fresh.do("POST", "/v1/restore", bad), 400)
	fresh.want(fresh.do("POST", "/v1/restore", file[:len(file)-3]), 400)
	fresh.want(fresh.do("POST", "/v1/restore", []byte("not a backup")), 400)
	if st := decode[httpapi.StatusResponse](t, fresh.want(fresh.do("GET", "/v1/status", nil), 200)); st.Keys != 0 {
		t.Fatalf("refused restores left %d keys", st.Keys)
	}

	// Restore is not bound by the small body limit, but by its own.
	small := newEnv(t, httpapi.Options{MaxBodyBytes: 10})
	small.want(small.do("POST", "/v1/restore", file), 200)
	capped := newEnv(t, httpapi.Options{MaxRestoreBytes: 10})
	capped.want(capped.do("POST", "/v1/restore", file), 413)
}

func TestRestoreRefusedRecord(t *testing.T) {
	var buf bytes.Buffer
	if _, err := backup.Write(&buf, func(yield func(backup.Record, error) bool) {
		yield(backup.Record{Key: []byte("k"), State: []byte("not a state")}, nil)
	}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, httpapi.Options{})
	r := e.want(e.do("POST", "/v1/restore", buf.Bytes()), 400)
	if !strings.Contains(string(r.body), "refuses") {
		t.Fatalf("body %s", r.body)
	}
}

func TestBackupError(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	e.fake.Err = node.ErrClosed
	e.want(e.do("POST", "/v1/backup", nil), 503)
}
