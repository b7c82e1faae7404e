package antientropy

import "github.com/gossipmesh/gossipmesh/sync/merkle"

// A session is a sequence of turns. In each turn one side sends one or more
// Messages (all but the last with More set); the other side answers only once
// the turn is complete. Every Item of a turn gets exactly one Reply, in order,
// in the peer's next turn, except ItemStream, which is answered by records
// alone. A Message with Fin set ends the session: its sender expects no
// answer.

// RootStatus is a responder's verdict on one partition root.
type RootStatus uint8

// Root statuses.
const (
	RootMatch   RootStatus = 0 // identical roots: nothing to do
	RootDiffer  RootStatus = 1 // roots differ: the responder sends an item for the root node
	RootNotHeld RootStatus = 2 // the responder does not hold the partition
)

// Root is one partition root in the initiator's first message.
type Root struct {
	Partition uint32
	Count     uint64 // keys in the initiator's tree; 0 lets the responder stream everything
	Hash      merkle.Hash
}

// ReplyKind says which kind of item a Reply answers.
type ReplyKind uint8

// Reply kinds.
const (
	ReplyRoot   ReplyKind = 0 // answers a Root: Status
	ReplyHashes ReplyKind = 1 // answers ItemHashes: Bits (differing children), Check
	ReplyList   ReplyKind = 2 // answers ItemList: Bits (fingerprints requested)
)

// Reply answers one of the peer's items.
type Reply struct {
	Kind   ReplyKind
	Status RootStatus // ReplyRoot
	// NBits is the bitmap length: the child count for ReplyHashes (a power of
	// two, 2..256), the fingerprint count for ReplyList.
	NBits int
	// Bits is the bitmap, least significant bit first; unused high bits of the
	// last byte are zero.
	Bits []byte
	// Check is 16 bits of the responder's Sum of the children it found equal.
	// The item's sender compares it with its own and re-sends the node with
	// another hash window if they differ (a truncated hash matched by chance).
	Check uint16
}

// ItemKind is the kind of an Item.
type ItemKind uint8

// Item kinds.
const (
	// ItemHashes carries one truncated hash per child of a node 2^Fanout
	// children down. The peer answers with the differing children, and sends
	// an item for each of them.
	ItemHashes ItemKind = 0
	// ItemList carries a 32-bit fingerprint per key of a small node. The peer
	// answers with the fingerprints it lacks and sends its keys the sender
	// lacks as Records.
	ItemList ItemKind = 1
	// ItemStream says that the sender's Records for the node precede it in
	// this turn (the peer's subtree was empty, so listing would be waste). The
	// peer answers with Records for the keys where it differs.
	ItemStream ItemKind = 2
)

// Node names a node of a partition's key-hash trie: the keys whose 64-bit
// key hash has Prefix as its top Depth bits.
type Node struct {
	Partition uint32
	Depth     uint8
	Prefix    uint64
}

// Item is one step of the descent. Usually its node is implied by order: the
// n-th non-explicit item of a turn is about the n-th differing child (or
// root) named by the sender's replies in the same turn. Explicit items (hash
// window retries) carry their Node.
type Item struct {
	Kind     ItemKind
	Explicit bool
	Node     Node // on the wire only when Explicit
	// Window selects which byte of each child Sum is sent (0..3); it advances
	// when a retry is needed. ItemHashes only.
	Window uint8
	// Fanout is log2 of the number of children (1..8). ItemHashes only.
	Fanout uint8
	// Hashes holds 1<<Fanout truncated child hashes; 0 means an empty child.
	Hashes []byte
	// Fingerprints lists merkle.Fingerprint of each key. ItemList only.
	Fingerprints []uint32
}

// Record is a key's encoded CRDT state, for the receiver to merge and store.
type Record struct {
	Partition uint32
	Key       []byte
	State     []byte
}

// Message is one frame of a turn. Encode it with AppendMessage.
type Message struct {
	More    bool // more frames of this turn follow
	Fin     bool // last message of the session: no answer expected
	Roots   []Root
	Records []Record
	Replies []Reply
	Items   []Item
}
