// Package antientropy reconciles two replicas' partitions: a Merkle-tree
// descent that exchanges only the differing key states, both ways, as a pure
// step machine with a versioned wire codec.
//
// # Protocol
//
// The initiator's first message carries the 128-bit root of every partition
// it wants to reconcile. Then the two sides take turns. In its turn a side
// answers every item of the peer's previous turn, in order, and sends new
// items for the nodes it found different:
//
//   - ItemHashes: one byte of the Sum of each of 2^f children of the node,
//     f = 1..8 chosen from the node's size (wide when few nodes differ, to
//     save round trips; 16 children otherwise). The reply is a bitmap of the
//     differing children plus a 16-bit check of the children found equal, so
//     a one-byte hash that matched by chance is caught and the node is
//     re-sent through another byte window.
//   - ItemList: for a node of a few keys, a 32-bit fingerprint per key. The
//     peer sends its keys whose fingerprints are absent and requests the
//     fingerprints it lacks, which are then sent.
//   - ItemStream: when the peer's subtree is empty, the states themselves.
//     The peer answers with its states that differ (an equal digest is not
//     sent back).
//
// A node is never named on the wire: the n-th item of a turn is about the
// n-th differing child the same turn's replies announce. A turn is split
// into frames of at most Config.MaxFrameBytes; a turn with nothing that needs
// an answer is marked Fin and ends the session.
//
// Both sides end holding the merge of both states: every key whose digest
// differs, or that one side lacks, is sent by each side that holds it.
// States are opaque: the protocol cannot know that one state dominates the
// other, so a key updated on both sides costs two records.
//
// # Caller contract
//
// The session does no I/O. The caller sends Output.Send, merges
// Output.Store into its store and tree, and only then calls Step with the
// next received message. The trees may change between steps (merges, local
// writes); comparisons always read the current tree, so subtrees already
// reconciled simply match. A session that is interrupted is restarted from
// scratch: what was merged before the interruption matches and is not
// descended again.
//
// # Example
//
//	a, out, err := antientropy.Start(antientropy.DefaultConfig(), replicaA, []uint32{0, 1, 2})
//	b, err := antientropy.Accept(antientropy.DefaultConfig(), replicaB)
//	// node loop, one side: for each received frame f
//	m, err := antientropy.DecodeMessage(f, cfg.MaxFrameBytes)
//	out, err = b.Step(m)
//	for _, r := range out.Store { /* merge r.State into key r.Key, update the tree */ }
//	for _, m := range out.Send { buf, _ := antientropy.AppendMessage(nil, m); /* write framed */ }
//	if out.Done { /* close the stream */ }
package antientropy
