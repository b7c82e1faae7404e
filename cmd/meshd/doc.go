// Command meshd is the gossipmesh daemon: one mesh node with an on-disk
// store, a local HTTP API (package httpapi), Prometheus metrics and
// backup/restore.
//
//	meshd [--data DIR] [--listen MULTIADDR]... [--api HOST:PORT]
//	      [--bootstrap MULTIADDR/p2p/PEERID]... [--join URL]... [--mesh NAME]
//	      [--config FILE]
//	      [--swarm-key FILE] [--allowlist FILE] [--encryption-key-file FILE]
//	      [--mdns=true|false] [--memory] [--partitions N] [--replication R]
//	      [--pin PARTITION]... [--api-token-file FILE]
//	      [--sync-interval D] [--max-value-bytes N]
//	      [--log-format text|json] [--log-level debug|info|warn|error]
//
// Settings come from the defaults, then the --config TOML file, then the
// flags given: later wins. The file's keys are the flag names, and unknown
// keys are refused. A list flag given on the command line replaces the file's
// list. Example file:
//
//	data = "/var/lib/meshd"
//	api = "127.0.0.1:7700"
//	listen = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
//	bootstrap = ["/ip4/10.0.0.2/tcp/4001/p2p/12D3KooW..."]
//	mesh = "plant-7"
//	mdns = false
//	log-format = "json"
//
// --join http://node1:7700 names a peer by its HTTP API instead of its peer
// ID: meshd asks it for GET /v1/id and dials the addresses it returns,
// retrying with backoff (250 ms to 4 s) until it answers, and again whenever
// that peer stops being a member. It is how containers that know each other
// only by service name find each other (simulations/cluster/compose.yaml).
//
// At start meshd prints its peer ID, its listen multiaddrs and the API
// address on stdout; logs go to stderr. SIGINT or SIGTERM stops it cleanly
// (API drained, store flushed and closed); a second signal exits at once
// with status 1. Bad flags or config print one line on stderr and exit 2.
package main
