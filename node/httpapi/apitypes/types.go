package apitypes

// APIHeader is set on every answer of meshd's HTTP API, errors included,
// with the value APIVersion.
const (
	APIHeader  = "Gossipmesh-Api"
	APIVersion = "1"
)

// Error codes of ErrorResponse.Code.
const (
	CodeBadRequest   = "bad_request"    // 400: malformed input
	CodeInvalidKey   = "invalid_key"    // 400: empty key
	CodeUnauthorized = "unauthorized"   // 401: no bearer token
	CodeForbidden    = "forbidden"      // 403: wrong token
	CodeNotFound     = "not_found"      // 404: the key holds no value
	CodeNoRoute      = "no_route"       // 404: no such route
	CodeMethod       = "method"         // 405: wrong method for the route
	CodeWrongKind    = "wrong_kind"     // 409: the key holds another kind of value
	CodeTooLarge     = "too_large"      // 413: key, value or body too large
	CodeCounterRange = "counter_range"  // 422: the increment would leave the int64 range
	CodeNotReady     = "not_ready"      // 503 from /v1/ready
	CodeUnavailable  = "unavailable"    // 503: store failure, node closed, no holder
	CodeStoreFull    = "store_full"     // 507: free disk space below the node's floor, or the store at its quota
	CodeUnsupported  = "not_supported"  // 501: this server does not offer the route
	CodeUnreachable  = "unreachable"    // 502: POST /v1/join could not reach the peer
	CodeInternal     = "internal_error" // 500
)

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
}

// KVResponse is the body of GET /v1/kv/{key}.
type KVResponse struct {
	Key string `json:"key"`
	// Value is the value as text, omitted when it is not valid UTF-8.
	Value *string `json:"value,omitempty"`
	// ValueB64 is always present: the value in standard base64.
	ValueB64 string `json:"value_b64"`
}

// ValuesResponse is the body of GET /v1/mv/{key}.
type ValuesResponse struct {
	Key    string   `json:"key"`
	Values []string `json:"values"`
}

// KeysResponse is the body of GET /v1/keys.
type KeysResponse struct {
	Keys []string `json:"keys"`
	// Local is true when the list holds only the keys this node stores
	// (?local=1, or a node that cannot ask other holders).
	Local bool `json:"local"`
}

// CounterRequest is the optional body of POST /v1/counter/{key}.
type CounterRequest struct {
	Delta *int64 `json:"delta"`
}

// CounterResponse is the body of both counter routes.
type CounterResponse struct {
	Key   string `json:"key"`
	Value int64  `json:"value"`
}

// MemberRequest is the body of POST and DELETE /v1/set/{key}: exactly one
// of Member (text) and MemberB64 (standard base64, for binary members).
// DELETE also accepts ?member= instead of a body.
type MemberRequest struct {
	Member    *string `json:"member,omitempty"`
	MemberB64 *string `json:"member_b64,omitempty"`
}

// MembersResponse is the body of GET /v1/set/{key}.
type MembersResponse struct {
	Key     string   `json:"key"`
	Members []string `json:"members"`
}

// RestoreResponse is the body of POST /v1/restore.
type RestoreResponse struct {
	Records int `json:"records"`
}
