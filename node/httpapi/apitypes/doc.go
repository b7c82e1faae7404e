// Package apitypes holds the request and response bodies of meshd's HTTP
// API (package httpapi serves them, package client sends them), and the
// error codes an error body carries. It imports only the standard library,
// so a client of the API does not link the node, libp2p or the store.
//
// Every error answer is an ErrorResponse:
//
//	{"error": "key not found: \"greeting\"", "code": "not_found"}
//
// and every answer of meshd carries the header APIHeader, so a client can
// tell meshd's 404 for an absent key from another server's 404.
//
// Example, decoding an answer of GET /v1/kv/greeting:
//
//	var kv apitypes.KVResponse
//	err := json.NewDecoder(res.Body).Decode(&kv)
package apitypes
