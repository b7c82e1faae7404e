package client

import (
	"errors"
	"fmt"

	"github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"
)

// Sentinel errors; an *Error from meshd matches the one of its code.
var (
	// ErrUnreachable: no connection to the address (refused, timed out,
	// no such host).
	ErrUnreachable = errors.New("client: cannot reach meshd")
	// ErrNotMeshd: the server answered, but not as meshd does (no
	// Gossipmesh-Api header and no JSON error body).
	ErrNotMeshd = errors.New("client: the server is not meshd")
	// ErrNotFound: the key holds no value.
	ErrNotFound = errors.New("client: key not found")
	// ErrWrongKind: the key holds another kind of value.
	ErrWrongKind = errors.New("client: key holds another kind of value")
	// ErrInvalidKey: the key is empty.
	ErrInvalidKey = errors.New("client: invalid key")
	// ErrTooLarge: the key or value is over meshd's limit.
	ErrTooLarge = errors.New("client: too large")
	// ErrUnauthorized: no token, or a wrong one.
	ErrUnauthorized = errors.New("client: unauthorized")
	// ErrNotReady: meshd is not ready (GET /v1/ready).
	ErrNotReady = errors.New("client: meshd not ready")
	// ErrUnavailable: meshd cannot serve the request now (store failure,
	// closing, no holder reachable).
	ErrUnavailable = errors.New("client: meshd unavailable")
	// ErrWatchEnded: meshd ended the watch (it is shutting down).
	ErrWatchEnded = errors.New("client: meshd ended the watch")
	// ErrBadAnswer: meshd's answer could not be decoded.
	ErrBadAnswer = errors.New("client: bad answer from meshd")
	// ErrInvalidAddr: the address given to New is not HOST[:PORT] or a URL.
	ErrInvalidAddr = errors.New("client: invalid address")
)

// Error is an error answer from the server.
type Error struct {
	Status  int    // HTTP status
	Code    string // apitypes.Code*; "" when the server is not meshd
	Message string // meshd's message, or a description of the answer
	Meshd   bool   // the answer came from meshd
}

func (e *Error) Error() string { return e.Message }

var codeErrors = map[string]error{
	apitypes.CodeNotFound:     ErrNotFound,
	apitypes.CodeWrongKind:    ErrWrongKind,
	apitypes.CodeInvalidKey:   ErrInvalidKey,
	apitypes.CodeTooLarge:     ErrTooLarge,
	apitypes.CodeUnauthorized: ErrUnauthorized,
	apitypes.CodeForbidden:    ErrUnauthorized,
	apitypes.CodeNotReady:     ErrNotReady,
	apitypes.CodeUnavailable:  ErrUnavailable,
}

// Is matches the sentinel of the error's code, and ErrNotMeshd for an
// answer from another server.
func (e *Error) Is(target error) bool {
	if target == ErrNotMeshd {
		return !e.Meshd
	}
	return e.Meshd && codeErrors[e.Code] == target
}

func badAnswer(err error) error { return fmt.Errorf("%w: %v", ErrBadAnswer, err) }
