package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/gossipmesh/gossipmesh/node/backup"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configures NewHandler. The zero value is usable.
type Options struct {
	// Token, when not empty, is required on every request as
	// "Authorization: Bearer <Token>", /metrics included. Default "" (no auth:
	// the daemon binds to loopback by default).
	Token string
	// MaxBodyBytes bounds every request body except /v1/restore's.
	// Default 2 MiB (a 1 MiB value plus framing headroom).
	MaxBodyBytes int64
	// MaxRestoreBytes bounds a /v1/restore body. Default 0: no limit beyond
	// the temporary directory's free space.
	MaxRestoreBytes int64
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
}

// DefaultMaxBodyBytes is the default Options.MaxBodyBytes.
const DefaultMaxBodyBytes = 2 << 20

type server struct {
	b     Backend
	opts  Options
	token [sha256.Size]byte
	log   *slog.Logger
}

// NewHandler returns the HTTP API (routes in the package doc) over b.
func NewHandler(b Backend, opts Options) http.Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &server{b: b, opts: opts, token: sha256.Sum256([]byte(opts.Token)), log: opts.Logger}
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
	mux.HandleFunc("GET /v1/watch", s.watch)
	mux.HandleFunc("POST /v1/backup", s.backup)
	mux.HandleFunc("POST /v1/restore", s.restore)
	mux.Handle("GET /metrics", s.metricsHandler())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(w, r) {
			return
		}
		r = withKey(r)
		h, pattern := mux.Handler(r)
		if pattern == "" {
			// The mux's own 404 and 405 answer in plain text; keep its
			// status and Allow header but answer in JSON like every route.
			jsonFallback(w, r, h)
			return
		}
		if r.URL.Path != "/v1/restore" {
			r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		} else if s.opts.MaxRestoreBytes > 0 {
			r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxRestoreBytes)
		}
		h.ServeHTTP(w, r)
	})
}

// keyRoutes are the path prefixes followed by a key.
var keyRoutes = []string{"/v1/kv/", "/v1/mv/", "/v1/counter/", "/v1/set/"}

// withKey routes a request for a key on a stand-in path and sets the key
// itself, exactly as sent: the mux would clean "a//b" or "a/../b" and
// answer a redirect, storing nothing, for a key that is perfectly valid.
func withKey(r *http.Request) *http.Request {
	for _, prefix := range keyRoutes {
		if key, ok := strings.CutPrefix(r.URL.Path, prefix); ok {
			routed := r.Clone(r.Context())
			routed.URL.Path, routed.URL.RawPath = prefix+"key", ""
			routed.SetPathValue("key", key)
			return routed
		}
	}
	return r
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
		writeError(w, http.StatusUnauthorized, "missing bearer token")
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(got[:], s.token[:]) != 1 {
		writeError(w, http.StatusForbidden, "wrong token")
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
	msg := "no such route"
	if sw.code == http.StatusMethodNotAllowed {
		msg = fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path)
	}
	writeError(w, sw.code, msg)
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing useful to do
}

// statusOf maps an error to its HTTP status code.
func statusOf(err error) int {
	var maxBytes *http.MaxBytesError
	switch {
	case errors.Is(err, node.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, node.ErrInvalidKey), errors.Is(err, errBadRequest),
		errors.Is(err, backup.ErrCorrupt), errors.Is(err, backup.ErrTruncated),
		errors.Is(err, backup.ErrVersion):
		return http.StatusBadRequest
	case errors.Is(err, node.ErrKeyTooLarge), errors.Is(err, node.ErrValueTooLarge),
		errors.As(err, &maxBytes):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, node.ErrWrongKind):
		return http.StatusConflict
	case errors.Is(err, node.ErrCounterRange):
		return http.StatusUnprocessableEntity
	case errors.Is(err, node.ErrClosed), errors.Is(err, node.ErrStore), errors.Is(err, node.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errBadRequest marks input errors found by the handler itself.
var errBadRequest = errors.New("httpapi: bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadRequest}, args...)...)
}

// fail writes err as a JSON error with its status code.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if code >= 500 {
		s.log.Warn("http api request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	var maxBytes *http.MaxBytesError
	msg := err.Error()
	if errors.As(err, &maxBytes) {
		msg = fmt.Sprintf("request body over the %d-byte limit", maxBytes.Limit)
	}
	// Our own wrapping prefix says nothing useful to API users.
	msg = strings.TrimPrefix(msg, errBadRequest.Error()+": ")
	writeError(w, code, msg)
}
