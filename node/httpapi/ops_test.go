package httpapi_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/gossipmesh/gossipmesh/node/httpapi"
	"github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestHealthAndReady(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	if h := decode[httpapi.HealthResponse](t, e.want(e.do("GET", "/v1/health", nil), 200)); h.Status != "ok" {
		t.Fatalf("health %+v", h)
	}
	if r := decode[httpapi.ReadyResponse](t, e.want(e.do("GET", "/v1/ready", nil), 200)); !r.Ready {
		t.Fatalf("ready %+v", r)
	}
	e.fake.NotReady = fmt.Errorf("%w: trees not built", node.ErrNotReady)
	r := decode[httpapi.ReadyResponse](t, e.want(e.do("GET", "/v1/ready", nil), 503))
	if r.Ready || r.Code != apitypes.CodeNotReady || r.Reason != "not ready: trees not built" {
		t.Fatalf("not ready %+v", r)
	}
	e.fake.NotReady = node.ErrClosed
	e.want(e.do("GET", "/v1/ready", nil), 503)
	e.want(e.do("GET", "/v1/health", nil), 200) // liveness asks nothing of the node

	// ExpectPeers: alone is not ready.
	p := newEnv(t, httpapi.Options{ExpectPeers: true})
	r = decode[httpapi.ReadyResponse](t, p.want(p.do("GET", "/v1/ready", nil), 503))
	if !strings.Contains(r.Reason, "no mesh member") {
		t.Fatalf("alone with ExpectPeers: %+v", r)
	}
	p.fake.PeerList = []node.PeerInfo{{ID: p.fake.PeerID}}
	p.want(p.do("GET", "/v1/ready", nil), 200)
}

func TestMembersJoinLeave(t *testing.T) {
	left := make(chan struct{}, 1)
	e := newEnv(t, httpapi.Options{Leave: func(context.Context) error { left <- struct{}{}; return nil }})
	other, _ := peer.Decode("12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK")
	e.fake.MemberList = []node.Member{{ID: other, State: node.MemberSuspect}}
	ms := decode[httpapi.MeshMembersResponse](t, e.want(e.do("GET", "/v1/members", nil), 200))
	if len(ms.Members) != 2 || !ms.Members[0].Self || ms.Members[0].State != "alive" || ms.Members[1].State != "suspect" ||
		ms.Members[1].Partitions == nil || ms.Members[1].Addrs == nil {
		t.Fatalf("members %+v", ms)
	}

	addr := "/ip4/10.0.0.2/tcp/4001/p2p/" + other.String()
	j := decode[apitypes.JoinResponse](t, e.want(e.do("POST", "/v1/join", []byte(`{"addr":"`+addr+`"}`)), 200))
	if j.PeerID != other.String() || len(e.fake.Joined) != 1 || e.fake.Joined[0].String() != addr {
		t.Fatalf("join %+v, fake saw %v", j, e.fake.Joined)
	}
	e.want(e.do("POST", "/v1/join", []byte(`{"addr":"/ip4/10.0.0.2/tcp/4001"}`)), 400)
	e.want(e.do("POST", "/v1/join", []byte(`{"addr":"nonsense"}`)), 400)
	e.fake.ConnectErr = errors.New("dial backoff")
	r := e.want(e.do("POST", "/v1/join", []byte(`{"addr":"`+addr+`"}`)), 502)
	if !strings.Contains(string(r.body), "cannot reach the peer") || strings.Contains(string(r.body), "httpapi") {
		t.Fatalf("join failure body %s", r.body)
	}

	e.want(e.do("POST", "/v1/leave", nil), 200)
	if len(left) != 1 {
		t.Fatal("Options.Leave not called")
	}
	none := newEnv(t, httpapi.Options{})
	none.want(none.do("POST", "/v1/leave", nil), 501)
}

// The body limit follows the node's value limit: a value the node takes
// is never refused by the HTTP layer, however large the limit.
func TestBodyLimitFollowsValueLimit(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	e.fake.MaxValueBytes = 3 << 20
	e.want(e.do("PUT", "/v1/kv/big", make([]byte, 3<<20)), 204)
	member := strings.Repeat("m", 3<<20)
	e.want(e.do("POST", "/v1/set/s", []byte(`{"member_b64":"`+b64(member)+`"}`)), 204)
	r := e.want(e.do("PUT", "/v1/kv/big", make([]byte, 3<<20+1)), 413)
	if !strings.Contains(string(r.body), "value too large") {
		t.Fatalf("over the value limit: %s", r.body)
	}
	if got := httpapi.BodyLimit(3 << 20); got < 4<<20 {
		t.Fatalf("BodyLimit(3 MiB) = %d: a base64 member would not fit", got)
	}
}

// Errors carry a code and the API header, and no package prefixes.
func TestErrorBodies(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	e.want(e.do("POST", "/v1/counter/hits", nil), 200)
	for _, c := range []struct {
		method, path string
		status       int
		code, msg    string
	}{
		{"GET", "/v1/kv/hits", 409, apitypes.CodeWrongKind, `key holds another kind of value: "hits" is a counter`},
		{"GET", "/v1/kv/absent", 404, apitypes.CodeNotFound, `key not found: "absent"`},
		{"GET", "/v1/kv/", 400, apitypes.CodeInvalidKey, "empty key: name the key after the route, as in /v1/kv/KEY"},
		{"POST", "/v1/counter/", 400, apitypes.CodeInvalidKey, "empty key"},
		{"GET", "/v1/nope", 404, apitypes.CodeNoRoute, "no such route: /v1/nope"},
		{"GET", "/v1/keys?encoding=x", 400, apitypes.CodeBadRequest, `encoding must be text or base64, got "x"`},
	} {
		r := e.want(e.do(c.method, c.path, nil), c.status)
		body := decode[apitypes.ErrorResponse](t, r)
		if body.Code != c.code || !strings.HasPrefix(body.Error, c.msg) || strings.Contains(body.Error, "node:") {
			t.Errorf("%s %s: %+v, want code %s, message %q", c.method, c.path, body, c.code, c.msg)
		}
		if r.hdr.Get(apitypes.APIHeader) != apitypes.APIVersion {
			t.Errorf("%s %s: no %s header", c.method, c.path, apitypes.APIHeader)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestKeysLocalFlag(t *testing.T) {
	e := newEnv(t, httpapi.Options{})
	e.want(e.do("PUT", "/v1/kv/a", []byte("v")), 204)
	for q, local := range map[string]bool{"": false, "?local=1": true} {
		ks := decode[httpapi.KeysResponse](t, e.want(e.do("GET", "/v1/keys"+q, nil), 200))
		if ks.Local != local || len(ks.Keys) != 1 {
			t.Errorf("keys%s = %+v, want local %v", q, ks, local)
		}
	}
	e.fake.Err = node.ErrUnavailable
	e.want(e.do("GET", "/v1/keys", nil), 503)
}
