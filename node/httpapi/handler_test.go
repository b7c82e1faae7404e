package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/gossipmesh/gossipmesh/node/httpapi"
	"github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"
	"github.com/gossipmesh/gossipmesh/node/httpapi/httpapitest"
)

type env struct {
	t    *testing.T
	fake *httpapitest.Fake
	srv  *httptest.Server
}

func newEnv(t *testing.T, opts httpapi.Options) *env {
	t.Helper()
	fake := httpapitest.NewFake()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	srv := httptest.NewServer(httpapi.NewHandler(fake, opts))
	t.Cleanup(srv.Close)
	return &env{t: t, fake: fake, srv: srv}
}

type resp struct {
	code int
	body []byte
	hdr  http.Header
}

func (e *env) do(method, path string, body []byte, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp{res.StatusCode, b, res.Header}
}

// want checks the status and, for errors, that the body is a JSON error.
func (e *env) want(r resp, code int) resp {
	e.t.Helper()
	if r.code != code {
		e.t.Fatalf("status %d, want %d; body %s", r.code, code, r.body)
	}
	if code >= 400 {
		var eb struct{ Error string }
		if err := json.Unmarshal(r.body, &eb); err != nil || eb.Error == "" {
			e.t.Fatalf("error body %q is not {\"error\": ...}", r.body)
		}
		if ct := r.hdr.Get("Content-Type"); ct != "application/json" {
			e.t.Fatalf("error Content-Type %q", ct)
		}
	}
	return r
}

func decode[T any](t *testing.T, r resp) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
	return v
}

func TestKVRoundTrip(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	e.want(e.do("PUT", "/v1/kv/greeting", []byte("hello")), 204)
	kv := decode[httpapi.KVResponse](t, e.want(e.do("GET", "/v1/kv/greeting", nil), 200))
	if kv.Key != "greeting" || kv.Value == nil || *kv.Value != "hello" || kv.ValueB64 != base64.StdEncoding.EncodeToString([]byte("hello")) {
		t.Fatalf("GET = %+v", kv)
	}
	if r := e.want(e.do("GET", "/v1/kv/greeting?raw=1", nil), 200); string(r.body) != "hello" {
		t.Fatalf("raw GET = %q", r.body)
	}
	if r := e.want(e.do("GET", "/v1/kv/greeting", nil, "Accept", "application/octet-stream"), 200); string(r.body) != "hello" {
		t.Fatalf("octet-stream GET = %q", r.body)
	}
	e.want(e.do("DELETE", "/v1/kv/greeting", nil), 204)
	e.want(e.do("GET", "/v1/kv/greeting", nil), 404)
}

func TestKVKeysWithSlashesAndEscapes(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	e.want(e.do("PUT", "/v1/kv/users/42/name", []byte("ada")), 204)
	e.want(e.do("PUT", "/v1/kv/sp%20ace%2Fslash%00nul", []byte("x")), 204)
	if v, err := e.fake.Get(t.Context(), []byte("users/42/name")); err != nil || string(v) != "ada" {
		t.Fatalf("key with slashes: %q, %v", v, err)
	}
	if v, err := e.fake.Get(t.Context(), []byte("sp ace/slash\x00nul")); err != nil || string(v) != "x" {
		t.Fatalf("escaped key: %q, %v", v, err)
	}
}

// Keys the mux would clean (double slashes, dot segments) are stored as
// given, not redirected with nothing stored.
func TestKVKeysTheMuxWouldClean(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	for _, key := range []string{"dir//file", "a/../b", "./x", "trailing/", "/lead"} {
		e.want(e.do("PUT", "/v1/kv/"+key, []byte("v:"+key)), 204)
		if v, err := e.fake.Get(t.Context(), []byte(key)); err != nil || string(v) != "v:"+key {
			t.Fatalf("key %q: %q, %v", key, v, err)
		}
		r := e.want(e.do("GET", "/v1/kv/"+key+"?raw=1", nil), 200)
		if string(r.body) != "v:"+key {
			t.Fatalf("GET %q: %q", key, r.body)
		}
	}
	e.want(e.do("POST", "/v1/counter/c//1", []byte(`{"delta":2}`)), 200)
}

func TestBinaryValue(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	val := []byte{0xff, 0x00, 0xfe}
	e.want(e.do("PUT", "/v1/kv/bin", val), 204)
	kv := decode[httpapi.KVResponse](t, e.want(e.do("GET", "/v1/kv/bin", nil), 200))
	if kv.Value != nil {
		t.Fatalf("value of invalid UTF-8 given as text: %q", *kv.Value)
	}
	if got, _ := base64.StdEncoding.DecodeString(kv.ValueB64); !bytes.Equal(got, val) {
		t.Fatalf("value_b64 = %q", kv.ValueB64)
	}
}

func TestStatusCodes(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	e.want(e.do("PUT", "/v1/kv/", []byte("v")), 400)                            // empty key
	e.want(e.do("PUT", "/v1/kv/"+strings.Repeat("k", 1025), []byte("v")), 413)  // key too large
	e.want(e.do("GET", "/v1/kv/absent", nil), 404)                              // absent
	e.want(e.do("POST", "/v1/counter/c", []byte(`{"delta":2}`)), 200)           //
	e.want(e.do("GET", "/v1/kv/c", nil), 409)                                   // wrong kind
	e.want(e.do("POST", "/v1/counter/c", []byte(`{"delta":"x"}`)), 400)         // bad JSON
	e.want(e.do("POST", "/v1/counter/c", []byte(`{"delta":1,"extra":1}`)), 400) // unknown field
	e.want(e.do("POST", "/v1/set/s", []byte(`{}`)), 400)                        // no member
	e.want(e.do("GET", "/v1/keys?encoding=rot13", nil), 400)                    // bad encoding
	e.want(e.do("GET", "/v1/nope", nil), 404)                                   // no route
	r := e.want(e.do("PATCH", "/v1/kv/a", nil), 405)                            // method
	if !strings.Contains(r.hdr.Get("Allow"), "GET") {
		t.Errorf("405 Allow = %q", r.hdr.Get("Allow"))
	}

	e.fake.Err = fmt.Errorf("disk on fire: %w", node.ErrStore)
	e.want(e.do("PUT", "/v1/kv/a", []byte("v")), 503)
	e.want(e.do("GET", "/v1/status", nil), 503)
	e.fake.Err = fmt.Errorf("%w: 10 bytes free", node.ErrStoreFull)
	full := decode[apitypes.ErrorResponse](t, e.want(e.do("PUT", "/v1/kv/a", []byte("v")), 507))
	if full.Code != apitypes.CodeStoreFull {
		t.Errorf("store full code = %q, want %q", full.Code, apitypes.CodeStoreFull)
	}
	e.fake.Err = node.ErrClosed
	e.want(e.do("GET", "/v1/kv/a", nil), 503)
	e.fake.Err = fmt.Errorf("%w for partition 3", node.ErrUnavailable)
	e.want(e.do("DELETE", "/v1/set/s?member=m", nil), 503)
	e.fake.Err = fmt.Errorf("something else")
	e.want(e.do("GET", "/v1/kv/a", nil), 500)
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, httpapi.Options{MaxBodyBytes: 100})
	e.want(e.do("PUT", "/v1/kv/a", make([]byte, 100)), 204)
	r := e.want(e.do("PUT", "/v1/kv/a", make([]byte, 101)), 413)
	if !strings.Contains(string(r.body), "100-byte limit") {
		t.Errorf("413 body = %s", r.body)
	}
	e.want(e.do("POST", "/v1/set/s", []byte(`{"member":"`+strings.Repeat("m", 200)+`"}`)), 413)

	// The node's own value limit also answers 413.
	e2 := newEnv(t, httpapi.Options{})
	e2.fake.MaxValueBytes = 10
	e2.want(e2.do("PUT", "/v1/kv/a", make([]byte, 11)), 413)
}

func TestToken(t *testing.T) {
	e := newEnv(t, httpapi.Options{Token: "s3cret"})
	r := e.want(e.do("GET", "/v1/id", nil), 401)
	if !strings.HasPrefix(r.hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 WWW-Authenticate = %q", r.hdr.Get("WWW-Authenticate"))
	}
	e.want(e.do("GET", "/v1/id", nil, "Authorization", "Basic czNjcmV0"), 401)
	e.want(e.do("GET", "/v1/id", nil, "Authorization", "Bearer wrong"), 403)
	e.want(e.do("GET", "/v1/id", nil, "Authorization", "Bearer s3cret-and-more"), 403)
	e.want(e.do("GET", "/metrics", nil), 401)
	e.want(e.do("GET", "/v1/nope", nil), 401) // no route discovery without a token
	e.want(e.do("GET", "/v1/id", nil, "Authorization", "Bearer s3cret"), 200)
	e.want(e.do("GET", "/metrics", nil, "Authorization", "bearer s3cret"), 200)
}

func TestCounter(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	e.want(e.do("GET", "/v1/counter/hits", nil), 404)
	c := decode[httpapi.CounterResponse](t, e.want(e.do("POST", "/v1/counter/hits", nil), 200))
	if c.Value != 1 {
		t.Fatalf("incr with no body = %d, want 1", c.Value)
	}
	c = decode[httpapi.CounterResponse](t, e.want(e.do("POST", "/v1/counter/hits", []byte(`{"delta":-5}`)), 200))
	if c.Value != -4 {
		t.Fatalf("incr -5 = %d, want -4", c.Value)
	}
	c = decode[httpapi.CounterResponse](t, e.want(e.do("GET", "/v1/counter/hits", nil), 200))
	if c.Key != "hits" || c.Value != -4 {
		t.Fatalf("GET counter = %+v", c)
	}
}

func TestSet(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	e.want(e.do("POST", "/v1/set/tags", []byte(`{"member":"red"}`)), 204)
	e.want(e.do("POST", "/v1/set/tags", []byte(`{"member_b64":"Ymx1ZQ=="}`)), 204) // blue
	e.want(e.do("POST", "/v1/set/tags", []byte(`{"member":"green"}`)), 204)
	e.want(e.do("DELETE", "/v1/set/tags", []byte(`{"member":"green"}`)), 204)
	e.want(e.do("DELETE", "/v1/set/tags?member=nope", nil), 204)
	e.want(e.do("POST", "/v1/set/tags", []byte(`{"member":"a","member_b64":"YQ=="}`)), 400)
	m := decode[httpapi.MembersResponse](t, e.want(e.do("GET", "/v1/set/tags", nil), 200))
	if strings.Join(m.Members, ",") != "blue,red" {
		t.Fatalf("members = %v", m.Members)
	}
	m = decode[httpapi.MembersResponse](t, e.want(e.do("GET", "/v1/set/tags?encoding=base64", nil), 200))
	if strings.Join(m.Members, ",") != "Ymx1ZQ==,cmVk" {
		t.Fatalf("base64 members = %v", m.Members)
	}
}

func TestMV(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	e.want(e.do("PUT", "/v1/mv/doc", []byte("v1")), 204)
	v := decode[httpapi.ValuesResponse](t, e.want(e.do("GET", "/v1/mv/doc", nil), 200))
	if len(v.Values) != 1 || v.Values[0] != "v1" {
		t.Fatalf("mv values = %v", v.Values)
	}
}

func TestKeys(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	for _, k := range []string{"a/1", "a/2", "b/1"} {
		e.want(e.do("PUT", "/v1/kv/"+k, []byte("v")), 204)
	}
	ks := decode[httpapi.KeysResponse](t, e.want(e.do("GET", "/v1/keys?prefix=a/", nil), 200))
	if strings.Join(ks.Keys, ",") != "a/1,a/2" {
		t.Fatalf("keys = %v", ks.Keys)
	}
	ks = decode[httpapi.KeysResponse](t, e.want(e.do("GET", "/v1/keys", nil), 200))
	if len(ks.Keys) != 3 {
		t.Fatalf("all keys = %v", ks.Keys)
	}
	// [] rather than null keeps jq and scripts simple.
	if r := e.want(e.do("GET", "/v1/keys?prefix=zzz", nil), 200); !strings.Contains(string(r.body), `"keys":[]`) {
		t.Fatalf("empty keys body = %s", r.body)
	}
}

func TestInfoRoutes(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	id := decode[httpapi.IDResponse](t, e.want(e.do("GET", "/v1/id", nil), 200))
	if id.PeerID != e.fake.PeerID.String() || len(id.Addrs) != 1 || !strings.HasSuffix(id.Addrs[0], "/p2p/"+id.PeerID) {
		t.Fatalf("id = %+v", id)
	}
	e.fake.PeerList = []node.PeerInfo{{ID: e.fake.PeerID}}
	ps := decode[httpapi.PeersResponse](t, e.want(e.do("GET", "/v1/peers", nil), 200))
	if len(ps.Peers) != 1 || ps.Peers[0].PeerID != id.PeerID {
		t.Fatalf("peers = %+v", ps)
	}
	e.want(e.do("PUT", "/v1/kv/a", []byte("v")), 204)
	st := decode[httpapi.StatusResponse](t, e.want(e.do("GET", "/v1/status", nil), 200))
	if st.PeerID != id.PeerID || st.Keys != 1 || len(st.Partitions) != 1 || len(st.Partitions[0].Root) != 32 {
		t.Fatalf("status = %+v", st)
	}
}
