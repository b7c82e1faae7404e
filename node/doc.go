// Package node is a gossipmesh node as an embeddable Go library: a libp2p
// host, GossipSub for push replication of deltas, a Merkle anti-entropy
// stream protocol for pull repair, and a durable local datastore (pebble by
// default, or an in-memory map for tests and simulation).
//
// Every write is acknowledged only once it is durable in the local store.
// Concurrent writes are grouped into one synced commit by the node's event
// loop, the single goroutine that owns the clock and the Merkle trees. After
// the commit the write's delta is published by GossipSub, on one topic for
// all partitions under full replication or on its partition's topic under
// placement; periodically, and whenever a peer connects, the node runs a
// reconciliation session (package sync/antientropy) with a random peer,
// which repairs whatever gossip lost.
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
