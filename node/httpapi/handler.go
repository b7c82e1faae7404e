package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configures NewHandler. The zero value is usable.
type Options struct {
	// Token, when not empty, is required on every request as
	// "Authorization: Bearer <Token>", /metrics included. Default "" (no auth:
	// the daemon binds to loopback by default).
	Token string
	// MaxBodyBytes bounds every request body except /v1/restore's.
	// Default 0: BodyLimit of the backend's value limit when it reports one
	// (Backend.ValueLimit), so a value the node accepts
	// is never refused by the HTTP layer; DefaultMaxBodyBytes if it reports
	// none.
	MaxBodyBytes int64
	// MaxRestoreBytes bounds a /v1/restore body. Default 0: no limit beyond
	// the temporary directory's free space.
	MaxRestoreBytes int64
	// BodyTimeout bounds the time to receive a request body (ten times it
	// for /v1/restore). Default 0: DefaultBodyTimeout.
	BodyTimeout time.Duration
	// TempDir holds a restore upload while it is verified. Default os.TempDir().
	TempDir string
	// Registry, when non-nil, is served by /metrics beside the node's own
	// metrics; the handler does not register into it. Default nil: the Go
	// runtime and process collectors are served instead.
	Registry *prometheus.Registry
	// Logger receives server-side failures (5xx). Default slog.Default().
	Logger *slog.Logger
	// Done, when closed, ends every open watch stream (with "event: end").
	// Close it before http.Server.Shutdown, which otherwise waits for those
	// never-ending requests. Default nil: watches end only with the client
	// or the node.
	Done <-chan struct{}
	// JoinToken, when non-nil, gives the join token GET /v1/token serves
	// (see token.go). Default nil: the route answers 404.
	JoinToken func() string
	// ExpectPeers makes GET /v1/ready wait for at least one mesh member
	// even when the backend was given no bootstrap peers (meshd sets it for
	// --join). Default false: a node alone by config is ready alone.
	ExpectPeers bool
	// Leave, when set, serves POST /v1/leave: it must announce the leave
	// to the mesh and stop the daemon (meshd shuts down as on SIGTERM).
	// Default nil: POST /v1/leave answers 501.
	Leave func(ctx context.Context) error
	// WatchHistory is how many recent changes are kept so a watch can
	// resume after a reconnect (Last-Event-ID or ?from=). Default 4096.
	WatchHistory int
}

// DefaultMaxBodyBytes is the default Options.MaxBodyBytes for a backend
// that does not report its value limit.
const DefaultMaxBodyBytes = 2 << 20

// DefaultBodyTimeout is Options.BodyTimeout's default.
const DefaultBodyTimeout = time.Minute

func (o Options) bodyTimeout() time.Duration {
	if o.BodyTimeout > 0 {
		return o.BodyTimeout
	}
	return DefaultBodyTimeout
}

// BodyLimit is the request body limit that fits a value of maxValueBytes
// in every route that carries one: raw in PUT /v1/kv, or base64 in a JSON
// set member (4/3 of it), plus 64 KiB for framing.
func BodyLimit(maxValueBytes int) int64 {
	v := int64(maxValueBytes)
	return (v+2)/3*4 + 64<<10
}

type server struct {
	b     Backend
	opts  Options
	token [sha256.Size]byte
	log   *slog.Logger
	hub   *hub
}

// bodyLimit is the body limit of one request, from Options.MaxBodyBytes
// or else the backend's value limit as it is now.
func (s *server) bodyLimit() int64 {
	if s.opts.MaxBodyBytes > 0 {
		return s.opts.MaxBodyBytes
	}
	if v := s.b.ValueLimit(); v > 0 {
		return BodyLimit(v)
	}
	return DefaultMaxBodyBytes
}

// limitBody bounds r's body: a declared length over the limit is refused
// at once with 413 (the client need not send gigabytes to hear it), and
// the body must arrive within BodyTimeout. It reports whether to go on.
func (s *server) limitBody(w http.ResponseWriter, r *http.Request) bool {
	limit, timeout := s.bodyLimit(), s.opts.bodyTimeout()
	if r.URL.Path == "/v1/restore" {
		limit, timeout = s.opts.MaxRestoreBytes, 10*timeout
	}
	if limit > 0 && r.ContentLength > limit {
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestEntityTooLarge, apitypes.CodeTooLarge,
			fmt.Sprintf("request body of %d bytes is over the %d-byte limit", r.ContentLength, limit))
		return false
	}
	if limit > 0 {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	if r.ContentLength != 0 {
		// A body trickling in holds a connection and a goroutine: bound it.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
	}
	return true
}

// NewHandler returns the HTTP API (routes in the package doc) over b.
func NewHandler(b Backend, opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &server{b: b, opts: opts, token: sha256.Sum256([]byte(opts.Token)), log: opts.Logger}
	s.hub = newHub(b, opts.WatchHistory, opts.Done, opts.Logger)
	mux := s.routes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(apitypes.APIHeader, apitypes.APIVersion)
		if !s.authorized(w, r) {
			return
		}
		r, isKey := withKey(r)
		if isKey && r.PathValue("key") == "" {
			writeError(w, http.StatusBadRequest, apitypes.CodeInvalidKey, emptyKeyMessage)
			return
		}
		h, pattern := mux.Handler(r)
		if pattern == "" {
			// The mux's own 404 and 405 answer in plain text; keep its
			// status and Allow header but answer in JSON like every route.
			jsonFallback(w, r, h)
			return
		}
		if !s.limitBody(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	// {key...} takes the rest of the path, so keys may contain slashes; the
	// mux hands it over percent-decoded, so any byte can be sent as %XX.
	mux.HandleFunc("PUT /v1/kv/{key...}", s.putKV)
	mux.HandleFunc("GET /v1/kv/{key...}", s.getKV)
	mux.HandleFunc("DELETE /v1/kv/{key...}", s.deleteKV)
	mux.HandleFunc("PUT /v1/mv/{key...}", s.putMV)
	mux.HandleFunc("GET /v1/mv/{key...}", s.getMV)
	mux.HandleFunc("GET /v1/keys", s.keys)
	mux.HandleFunc("POST /v1/counter/{key...}", s.incr)
	mux.HandleFunc("GET /v1/counter/{key...}", s.counter)
	mux.HandleFunc("POST /v1/set/{key...}", s.sadd)
	mux.HandleFunc("DELETE /v1/set/{key...}", s.srem)
	mux.HandleFunc("GET /v1/set/{key...}", s.smembers)
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("GET /v1/id", s.id)
	mux.HandleFunc("GET /v1/peers", s.peers)
	mux.HandleFunc("GET /v1/token", s.joinToken)
	mux.HandleFunc("GET /v1/members", s.members)
	mux.HandleFunc("POST /v1/join", s.join)
	mux.HandleFunc("POST /v1/leave", s.leave)
	mux.HandleFunc("GET /v1/health", s.health)
	mux.HandleFunc("GET /v1/ready", s.ready)
	mux.HandleFunc("GET /v1/watch", s.watch)
	mux.HandleFunc("POST /v1/backup", s.backup)
	mux.HandleFunc("POST /v1/restore", s.restore)
	mux.Handle("GET /metrics", s.metricsHandler())
	return mux
}

// keyRoutes are the path prefixes followed by a key.
var keyRoutes = []string{"/v1/kv/", "/v1/mv/", "/v1/counter/", "/v1/set/"}

// withKey routes a request for a key on a stand-in path and sets the key
// itself, exactly as sent: the mux would clean "a//b" or "a/../b" and
// answer a redirect, storing nothing, for a key that is perfectly valid.
func withKey(r *http.Request) (*http.Request, bool) {
	for _, prefix := range keyRoutes {
		if key, ok := strings.CutPrefix(r.URL.Path, prefix); ok {
			routed := r.Clone(r.Context())
			routed.URL.Path, routed.URL.RawPath = prefix+"key", ""
			routed.SetPathValue("key", key)
			return routed, true
		}
	}
	return r, false
}

// authorized enforces Options.Token: 401 when no bearer token is sent, 403
// when a wrong one is. Both sides are hashed first so the comparison takes
// the same time whatever the length of the guess.
func (s *server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.Token == "" {
		return true
	}
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if auth == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="meshd"`)
		writeError(w, http.StatusUnauthorized, apitypes.CodeUnauthorized, "missing bearer token")
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(got[:], s.token[:]) != 1 {
		writeError(w, http.StatusForbidden, apitypes.CodeForbidden, "wrong token")
		return false
	}
	return true
}

// statusWriter captures a status code and drops the body.
type statusWriter struct {
	h    http.Header
	code int
}

func (w *statusWriter) Header() http.Header         { return w.h }
func (w *statusWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *statusWriter) WriteHeader(code int)        { w.code = code }

func jsonFallback(w http.ResponseWriter, r *http.Request, h http.Handler) {
	sw := &statusWriter{h: http.Header{}, code: http.StatusOK}
	h.ServeHTTP(sw, r)
	if allow := sw.h.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	code, msg := apitypes.CodeNoRoute, "no such route: "+r.URL.Path
	if sw.code == http.StatusMethodNotAllowed {
		code, msg = apitypes.CodeMethod, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path)
	}
	writeError(w, sw.code, code, msg)
}
