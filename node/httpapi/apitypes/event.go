package apitypes

// EventResponse is the JSON data of one "change" server-sent event of
// GET /v1/watch. The event's SSE id is also in ID, so a client that only
// reads data can resume with ?from=ID.
type EventResponse struct {
	ID       string  `json:"id"`
	Key      string  `json:"key"`
	KeyB64   string  `json:"key_b64"`
	Kind     string  `json:"kind"`
	Deleted  bool    `json:"deleted,omitempty"`
	Value    *string `json:"value,omitempty"`     // register value as text, if valid UTF-8
	ValueB64 *string `json:"value_b64,omitempty"` // register value, base64
	// Counter is a counter's new value.
	Counter *int64 `json:"counter,omitempty"`
	// Members is a set's members after the change, in standard base64,
	// sorted by their bytes.
	MembersB64 []string `json:"members_b64,omitempty"`
	Remote     bool     `json:"remote"`
}

// ResetResponse is the data of a "reset" event: the stream could not
// resume where the client asked (meshd restarted, or the client was away
// for longer than meshd keeps events), so changes may have been missed
// and the client should read again what it cares about.
type ResetResponse struct {
	Reason string `json:"reason"`
}
