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
//	GET    /v1/keys?prefix=P   -> {"keys":[...]}
//	POST   /v1/counter/{key}   body (optional): {"delta":N}, default 1 -> {"key","value"}
//	GET    /v1/counter/{key}   -> {"key","value"}
//	POST   /v1/set/{key}       body: {"member":"m"} or {"member_b64":"..."} -> 204
//	DELETE /v1/set/{key}       same body, or ?member=m                -> 204
//	GET    /v1/set/{key}       -> {"key","members":[...]} (sorted)
//	GET    /v1/status          -> {"peer_id","mesh","keys","peers","partitions":
//	                              [{"partition","root" (hex),"keys","peers_agreeing"}]}
//	GET    /v1/id              -> {"peer_id","addrs":[".../p2p/<id>"]}
//	GET    /v1/peers           -> {"peers":[{"peer_id","addrs"}]}
//	GET    /v1/watch?prefix=P  server-sent events: "event: change" with an
//	                              EventResponse as data; "event: end" when the
//	                              node ends the watch (closed, or client too slow)
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
// Every error is JSON {"error": "message"} with a status code:
// 400 bad input (empty key, bad JSON, corrupt or truncated backup),
// 401 no bearer token, 403 wrong token, 404 absent key or no such route,
// 405 wrong method, 409 the key holds another kind of value,
// 413 key, value or body too large, 503 store failure or node closed,
// 500 anything else.
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
