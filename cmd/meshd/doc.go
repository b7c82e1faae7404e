// Command meshd is the gossipmesh daemon: one mesh node with an on-disk
// store, a local HTTP API (package httpapi), Prometheus metrics and
// backup/restore.
//
//	meshd [--data DIR] [--listen MULTIADDR]... [--api HOST:PORT]
//	      [--bootstrap MULTIADDR/p2p/PEERID]... [--join URL|dns://NAME:PORT]...
//	      [--announce MULTIADDR]... [--mesh NAME]
//	      [--config FILE [--check]] [--print-config] [--version]
//	      [--join-token TOKEN | --swarm-key FILE | --open]
//	      [--allowlist FILE] [--encryption-key-file FILE]
//	      [--mdns=true|false] [--memory] [--partitions N] [--replication R]
//	      [--pin PARTITION]... [--api-token-file FILE]
//	      [--sync-interval D] [--max-value-bytes N]
//	      [--min-free-bytes N] [--ballast-bytes N] [--max-store-bytes N]
//	      [--log-format text|json] [--log-level debug|info|warn|error]
//	meshd [flags] config print
//
// Settings come from the defaults, then the --config TOML file, then the
// flags given: later wins. The file's keys are the flag names, and unknown
// keys are refused. A list flag given on the command line replaces the file's
// list. cmd/meshd/meshd.example.toml lists every key with its default (a
// test keeps it so); --check validates the settings and the files they
// name and exits, and "meshd config print" prints the settings in force as
// a config file.
//
// libp2p listens on port 7800 (TCP and QUIC) unless told otherwise: a fixed
// port, so the address another node bootstraps to survives a restart. A
// port another process holds is refused at start, and so is a data
// directory another node has open (naming its PID).
//
// A fresh node makes its own private mesh: a mesh secret (a libp2p swarm
// key, DIR/swarm.key) on the first start, and prints a join token, which
// carries the mesh's name, partition count, replication factor, secret and
// this node's addresses. Another node joins with --join-token TOKEN;
// meshctl token prints it again. --swarm-key names a key file managed by
// hand instead, and --open runs an open mesh, without a secret, that any
// node finding this one may join.
//
// --join http://node1:7700 names a peer by its HTTP API instead of its peer
// ID: meshd asks it for GET /v1/id and dials the addresses it returns,
// retrying with backoff (250 ms to 4 s) until it answers, and again whenever
// that peer stops being a member. It is how containers that know each other
// only by service name find each other.
//
// --join dns://NAME:PORT stands for every address NAME resolves to (A and
// AAAA: a Kubernetes headless Service, Swarm's tasks.SERVICE, a compose
// network alias shared by the nodes, simulations/cluster/compose.yaml):
// each address gets its own join through http://IP:PORT, as above, and
// the name is resolved again every 10 s, so that new nodes are joined and
// the joins of addresses gone are stopped. The node's own address is
// recognised by its peer ID and skipped. The peer ID is learnt through the
// API (with the API token when one is set), not by a libp2p dial, because
// the API returns every address of the peer, announced ones included, and
// works the same with a mesh secret.
//
// --announce MULTIADDR (repeatable) replaces the listen addresses in what
// the node advertises (identify, GET /v1/id): what peers should dial when
// a listen address is not reachable as is (NAT, a pod IP behind a
// Service).
//
// At start meshd prints its peer ID, its listen multiaddrs, the kind of
// mesh (with the join token when it made the secret) and, last, the API
// address on stdout; logs go to stderr. SIGINT or SIGTERM stops it cleanly
// (API drained, store flushed and closed); a second signal exits at once
// with status 1. Bad flags or config print one line on stderr and exit 2.
package main
