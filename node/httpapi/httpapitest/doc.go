// Package httpapitest provides Fake, an in-memory httpapi.Backend with the
// node's key rules and error sentinels, for testing the HTTP API and its
// clients (meshctl, package client) without starting libp2p or a store.
//
// Fake is not a CRDT: merges overwrite. Set Fake.Err to make every
// operation fail, to test error paths.
//
// Example:
//
//	fake := httpapitest.NewFake()
//	srv := httptest.NewServer(httpapi.NewHandler(fake, httpapi.Options{}))
//	defer srv.Close()
//	c, _ := client.New(srv.URL, client.Options{})
//	_ = c.Put(ctx, []byte("greeting"), []byte("hello"))
package httpapitest
