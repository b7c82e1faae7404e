package antientropy

import "errors"

// Decoding errors. DecodeMessage wraps exactly one of them.
var (
	ErrTruncated      = errors.New("antientropy: truncated message")
	ErrTooLarge       = errors.New("antientropy: message too large")
	ErrUnknownVersion = errors.New("antientropy: unknown message version")
	ErrMalformed      = errors.New("antientropy: malformed message")
)

// Session errors.
var (
	// ErrProtocol means the peer sent a message that does not fit the session
	// state (a reply to nothing, an item for an unannounced node, ...). The
	// session must be abandoned.
	ErrProtocol = errors.New("antientropy: protocol violation")
	// ErrDone is returned by Step after the session has ended.
	ErrDone = errors.New("antientropy: session already done")
	// ErrInvalidConfig is returned for a Config that fails validation.
	ErrInvalidConfig = errors.New("antientropy: invalid config")
	// ErrRecordTooLarge means a record cannot fit in one frame of
	// Config.MaxFrameBytes; or, from AppendMessage, a field exceeds its limit.
	ErrRecordTooLarge = errors.New("antientropy: record too large for a frame")
)
