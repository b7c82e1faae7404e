package node

import (
	"github.com/gossipmesh/gossipmesh/sync/merkle"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// Kind names the CRDT type a key holds, as shown to API users.
type Kind string

const (
	KindRegister   Kind = "register"    // LWW register: Put, Get, Delete
	KindMVRegister Kind = "mv-register" // multi-value register: WriteMV, GetMV
	KindCounter    Kind = "counter"     // PN-counter: Incr, Counter
	KindSet        Kind = "set"         // add-wins OR-set: SAdd, SRem, SMembers
)

// Event is one change seen by Watch: a local write or a merged remote one.
type Event struct {
	Key     []byte
	Kind    Kind
	Deleted bool   // the register was deleted
	Value   []byte // register value; nil for other kinds and deletions
	Remote  bool   // the change came from another node
	// Counter is a counter's value after the change (KindCounter).
	Counter int64
	// Members are a set's members after the change, sorted bytewise
	// (KindSet).
	Members [][]byte
}

// PartitionStatus describes one partition this node stores.
type PartitionStatus struct {
	Partition     uint32
	Root          merkle.Hash
	Keys          int
	Held          bool      // placement gives this partition to this node (else it is handing it over)
	Holders       []peer.ID // the partition's holders as this node computes placement
	PeersAgreeing int       // members storing this partition whose last reported root equals ours
	HoldersAgree  bool      // every holder last reported our root
}

// Status is a snapshot of the node's state.
type Status struct {
	PeerID     peer.ID
	Mesh       string
	Partitions []PartitionStatus
	Peers      int
	Keys       int
	// Hints counts writes this node holds for partitions it does not
	// hold, not yet handed off to a holder.
	Hints int
	// StoreFull: free space on the store's disk is below
	// Config.MinFreeBytes, or the store is at Config.MaxStoreBytes, so
	// local writes fail with ErrStoreFull and remote states are not
	// stored until space returns.
	StoreFull bool
	// StoreFullReason says why: FullDiskFloor or FullQuota ("" when not
	// full).
	StoreFullReason string
	// StoreBytes is the store's size as last measured, plus what was
	// written since under a quota (0 when the store does not report it).
	StoreBytes uint64
	// MaxStoreBytes is the quota, Config.MaxStoreBytes (0: none).
	MaxStoreBytes uint64
	// AnnouncedFull: under placement, this node's heartbeats say it is
	// full, so it is given no partition it does not store. It stays set
	// until the store has room by a margin again (see MaxStoreBytes).
	AnnouncedFull bool
	// FreeBytes is the store's free disk space as last measured, less
	// an estimate of what was written since (0 when the node does not
	// guard its store: memory, a given Datastore, MinFreeBytes 0).
	FreeBytes uint64
}

// PeerInfo describes a live mesh member (see Node.Peers).
type PeerInfo struct {
	ID    peer.ID
	Addrs []multiaddr.Multiaddr
}
