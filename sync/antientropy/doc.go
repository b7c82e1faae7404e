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
//     re-sent through another byte window, with the same fanout. The retry
//     is compared on the children not flagged yet only: those flagged are
//     being descended already, and flagging them again would descend them
//     twice. (A retry of another fanout, from a peer of an earlier version,
//     is compared on all children.)
//   - ItemList: for a node of a few keys, a 32-bit fingerprint per key. The
//     peer sends its keys whose fingerprints are absent and requests the
//     fingerprints it lacks, which are then sent.
//   - ItemStream: when the peer's subtree is empty, the states themselves.
//     The peer, which said it had nothing there, sends nothing back.
//
// A node is never named on the wire: the n-th item of a turn is about the
// n-th differing child the same turn's replies announce. A turn is split
// into frames of at most Config.MaxFrameBytes; a turn with nothing that needs
// an answer is marked Fin and ends the session.
//
// Both sides end holding the merge of both states: every key whose digest
// differs, or that one side lacks, is sent by each side that holds it.
// States are opaque: the protocol cannot know that one state dominates the
// other, so a key updated on both sides costs two records, except when the
// side that answers second finds that the peer's state, which came in the
// same turn, includes its own (it merged it and holds it unchanged, or a
// Replica that is a Subsumer says so): then no record goes back.
//
// # Limits
//
// A peer may ask only for what the session's own exchange justifies; a
// message asking for more fails the session with ErrProtocol, before
// anything is read or sent for it:
//
//   - roots come in the initiator's first message only, each partition once;
//   - an explicit item is a hash-window retry: it names a node the peer
//     expanded in its previous turn, once, through a later window (or lists
//     it), never a stream;
//   - ItemStream answers only a node this side announced empty.
//
// Within that, a peer that lies (every child differs, every check fails)
// still draws each record at most once per session: a node whose records
// were sent is covered, and a node expanded before and named again is
// listed, not expanded again, so the descent cannot grow without end.
//
// # Caller contract
//
// The session does no I/O. The caller sends Output.Send, merges
// Output.Store into its store and tree, and only then calls Step with the
// next received message. Receive is Step without the frames: the caller
// takes them one by one from Next, which reads each frame's states from
// the Replica only then (and calls nothing else of it), so a caller whose
// peer stops reading holds one frame, not the whole answer. The trees may change between steps (merges, local
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
