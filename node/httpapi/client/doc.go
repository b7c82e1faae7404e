// Package client is a Go client for meshd's HTTP API (package httpapi):
// what meshctl uses, and what a program beside a daemon can import to
// read and write the mesh without linking the node, libp2p or the store.
// It imports only the standard library and package apitypes.
//
// Keys, values and set members are byte strings; the client sends and
// reads them binary-safe (percent-escaped paths, base64 lists).
//
// Errors from meshd match the sentinels with errors.Is (ErrNotFound,
// ErrWrongKind, ...) and are an *Error with the status and code; a server
// that is not meshd is reported as ErrNotMeshd, and a connection failure
// as ErrUnreachable.
//
// Example:
//
//	c, err := client.New("127.0.0.1:7700", client.Options{})
//	if err != nil { ... }
//	if err := c.Put(ctx, []byte("greeting"), []byte("hello")); err != nil { ... }
//	v, err := c.Get(ctx, []byte("greeting"))
//	if errors.Is(err, client.ErrNotFound) { ... }
//
// Watch follows changes on one connection; Follow reconnects and resumes
// where it left off.
package client
