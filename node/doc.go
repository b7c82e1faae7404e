// Package node is a gossipmesh node as an embeddable Go library: a libp2p
// host, GossipSub for push replication of deltas, a Merkle anti-entropy
// stream protocol for pull repair, and a durable local datastore (pebble by
// default, or an in-memory map for tests and simulation).
//
// Every write is acknowledged only once it is durable in the local store.
// Concurrent writes are grouped into one synced commit by the node's event
// loop, the single goroutine that owns the clock and the Merkle trees. Only
// once the commit is synced does anything of it leave the node: the write's
// delta is published by GossipSub (on one topic for all partitions under
// full replication, on its partition's topic under placement), watchers are
// told, callers acknowledged, and session messages built in the same turn
// sent. Periodically, and whenever a peer connects, the node runs a
// reconciliation session (package sync/antientropy) with a random peer,
// which repairs whatever gossip lost.
//
// A node never builds a counter increment, set add or multi-value write on
// a view that lacks its own earlier contributions: under placement it keeps
// a durable record of its own part of each such key (crdt.Own), whatever
// it holds; and a start without a clean-shutdown marker takes a new actor
// identity (an epoch), so nothing a crash lost can collide with what had
// already been given away. See epoch.go and mutate.go.
//
// Usage:
//
//	cfg := node.DefaultConfig()
//	cfg.DataDir = "/var/lib/mesh"
//	n, err := node.New(ctx, cfg)
//	if err != nil { ... }
//	defer n.Close()
//	err = n.Put(ctx, []byte("sensor/42"), []byte("21.5C"))
//	v, err := n.Get(ctx, []byte("sensor/42"))
//
// See Example for a complete two-node program.
package node
