package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/gossipmesh/gossipmesh/node/backup"
	"github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"
)

// errBadRequest marks input errors found by the handler itself.
var errBadRequest = errors.New("httpapi: bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadRequest}, args...)...)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apitypes.ErrorResponse{Error: msg, Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing useful to do
}

// classify maps an error to its HTTP status and error code.
func classify(err error) (int, string) {
	var maxBytes *http.MaxBytesError
	switch {
	case errors.Is(err, node.ErrNotFound):
		return http.StatusNotFound, apitypes.CodeNotFound
	case errors.Is(err, node.ErrInvalidKey):
		return http.StatusBadRequest, apitypes.CodeInvalidKey
	case errors.Is(err, errBadRequest), errors.Is(err, node.ErrInvalidConfig),
		errors.Is(err, backup.ErrCorrupt), errors.Is(err, backup.ErrTruncated),
		errors.Is(err, backup.ErrVersion):
		return http.StatusBadRequest, apitypes.CodeBadRequest
	case errors.Is(err, node.ErrKeyTooLarge), errors.Is(err, node.ErrValueTooLarge),
		errors.As(err, &maxBytes):
		return http.StatusRequestEntityTooLarge, apitypes.CodeTooLarge
	case errors.Is(err, node.ErrWrongKind):
		return http.StatusConflict, apitypes.CodeWrongKind
	case errors.Is(err, node.ErrCounterRange):
		return http.StatusUnprocessableEntity, apitypes.CodeCounterRange
	case errors.Is(err, node.ErrNotReady):
		return http.StatusServiceUnavailable, apitypes.CodeNotReady
	case errors.Is(err, node.ErrStoreFull):
		return http.StatusInsufficientStorage, apitypes.CodeStoreFull
	case errors.Is(err, node.ErrClosed), errors.Is(err, node.ErrStore), errors.Is(err, node.ErrUnavailable):
		return http.StatusServiceUnavailable, apitypes.CodeUnavailable
	case errors.Is(err, errJoin):
		return http.StatusBadGateway, apitypes.CodeUnreachable
	case errors.Is(err, errUnsupported):
		return http.StatusNotImplemented, apitypes.CodeUnsupported
	}
	return http.StatusInternalServerError, apitypes.CodeInternal
}

// statusOf maps an error to its HTTP status code.
func statusOf(err error) int {
	status, _ := classify(err)
	return status
}

// errUnsupported: the backend does not offer what the route needs.
var errUnsupported = errors.New("httpapi: not supported by this server")

// fail writes err as a JSON error with its status and code.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	if status >= 500 {
		s.log.Warn("http api request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeError(w, status, code, userMessage(err))
}

// userMessage is err's text without the package prefixes of our own
// sentinels ("node: ", "httpapi: bad request: "), which mean nothing to an
// API user, and with the size limit of an over-long body spelled out.
func userMessage(err error) string {
	var maxBytes *http.MaxBytesError
	if errors.As(err, &maxBytes) {
		return fmt.Sprintf("request body over the %d-byte limit", maxBytes.Limit)
	}
	if errors.Is(err, node.ErrInvalidKey) && err.Error() == node.ErrInvalidKey.Error() {
		return emptyKeyMessage
	}
	msg := strings.ReplaceAll(err.Error(), errBadRequest.Error()+": ", "")
	parts := strings.Split(msg, ": ")
	out := parts[:0]
	for _, p := range parts {
		if p != "node" && p != "httpapi" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ": ")
}

// emptyKeyMessage says what is wrong with an empty key.
const emptyKeyMessage = "empty key: name the key after the route, as in /v1/kv/KEY"
