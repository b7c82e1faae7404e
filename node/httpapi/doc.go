// Package httpapi is meshd's local HTTP API: JSON over HTTP on top of a
// Backend, which *node.Node implements.
//
// # Routes
//
// Keys are the rest of the path after the route prefix, percent-decoded, so
// they may contain "/" and, written as %XX, any byte.
//
//	PUT    /v1/kv/{key}        body: the raw value                    -> 204
//	GET    /v1/kv/{key}        -> {"key","value","value_b64"}; "value" only when the
//	                              value is valid UTF-8. ?raw=1 or Accept:
//	                              application/octet-stream returns the bare bytes.
//	DELETE /v1/kv/{key}                                               -> 204
//	PUT    /v1/mv/{key}        body: the raw value (multi-value register) -> 204
//	GET    /v1/mv/{key}        -> {"key","values":[...]}
//	GET    /v1/keys?prefix=P   -> {"keys":[...],"local":false}: every key of the mesh
//	                              (under replication R > 0 the partitions held
//	                              elsewhere are asked of a holder; 503 if none
//	                              answers); ?local=1: only this node's keys
//	POST   /v1/counter/{key}   body (optional): {"delta":N}, default 1 -> {"key","value"}
//	GET    /v1/counter/{key}   -> {"key","value"}
//	POST   /v1/set/{key}       body: {"member":"m"} or {"member_b64":"..."} -> 204
//	DELETE /v1/set/{key}       same body, or ?member=m                -> 204
//	GET    /v1/set/{key}       -> {"key","members":[...]} (sorted)
//	GET    /v1/status          -> {"peer_id","mesh","keys","peers","partitions":
//	                              [{"partition","root" (hex),"keys","peers_agreeing"}]}
//	GET    /v1/id              -> {"peer_id","addrs":[".../p2p/<id>"]}
//	GET    /v1/peers           -> {"peers":[{"peer_id","addrs"}]}
//	GET    /v1/members         -> {"members":[{"peer_id","state" (alive, suspect, dead,
//	                              left),"self","addrs","partitions"}]}, this node first
//	POST   /v1/join            body: {"addr":"/ip4/.../p2p/ID"} -> {"peer_id"}; dialled
//	                              now and kept (502 if it cannot be reached yet)
//	POST   /v1/leave           -> {"left":true}: announce the leave, stop the daemon
//	                              (Options.Leave; 501 without it)
//	GET    /v1/health          -> {"status":"ok"}: liveness, asks nothing of the node
//	GET    /v1/ready           -> {"ready":true,"peers"} or 503 {"ready":false,"reason",
//	                              "error","code":"not_ready"}: store open, trees
//	                              built, a member reached unless alone by config
//	GET    /v1/watch?prefix=P  server-sent events: "id: EPOCH-SEQ" and "event:
//	                              change" with an EventResponse as data (counter
//	                              and set events carry the new value); resume
//	                              with Last-Event-ID or ?from=ID; "event: reset"
//	                              when changes since that id are not known;
//	                              "event: end" when the node ends the watch
//	POST   /v1/backup          -> a backup file (package backup), streamed
//	POST   /v1/restore         body: a backup file -> {"records":N}; verified
//	                              whole before anything is merged
//	GET    /metrics            Prometheus text format
//
// Lists of byte strings (keys, members, mv values) are text by default;
// ?encoding=base64 returns them in standard base64 for binary data.
//
// # Errors
//
// Every answer carries the header "Gossipmesh-Api: 1" (apitypes.APIHeader),
// so a client tells meshd from another server. Every error is JSON
// {"error": "message", "code": "not_found"} (codes in package apitypes)
// with a status code:
// 400 bad input (empty key, bad JSON, corrupt or truncated backup),
// 401 no bearer token, 403 wrong token, 404 absent key or no such route,
// 405 wrong method, 409 the key holds another kind of value,
// 413 key, value or body too large, 502 a peer to join not reachable,
// 503 store failure, node closed or not ready, 500 anything else.
//
// The request body limit is derived from the node's value limit
// (BodyLimit of Backend.ValueLimit), so any value the node accepts fits.
//
// Go programs call the API with package client (node/httpapi/client),
// which links neither the node nor libp2p; the bodies are in package
// apitypes.
//
// # Example
//
//	n, err := node.New(ctx, node.DefaultConfig())
//	if err != nil { ... }
//	h := httpapi.NewHandler(n, httpapi.Options{Token: token})
//	srv := &http.Server{Addr: "127.0.0.1:7700", Handler: h}
//	go srv.ListenAndServe()
//
// and from a shell:
//
//	curl -X PUT --data-binary 'hello' http://127.0.0.1:7700/v1/kv/greeting
//	curl 'http://127.0.0.1:7700/v1/kv/greeting?raw=1'
package httpapi
