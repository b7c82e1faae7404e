package httpapi

import (
	"context"
	"iter"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// Backend is the part of *node.Node the HTTP API serves. It is an interface
// so the handler can be tested, and meshctl with it, against the in-memory
// fake in package httpapitest without starting libp2p.
//
// Errors are the node package's sentinels (node.ErrNotFound and friends),
// which the handler maps to status codes.
type Backend interface {
	ID() peer.ID
	Addrs() []multiaddr.Multiaddr
	Peers() []node.PeerInfo
	Status(ctx context.Context) (node.Status, error)
	Stats() node.Stats

	Put(ctx context.Context, key, value []byte) error
	Get(ctx context.Context, key []byte) ([]byte, error)
	Delete(ctx context.Context, key []byte) error
	WriteMV(ctx context.Context, key, value []byte) error
	GetMV(ctx context.Context, key []byte) ([][]byte, error)
	Incr(ctx context.Context, key []byte, delta int64) (int64, error)
	Counter(ctx context.Context, key []byte) (int64, error)
	SAdd(ctx context.Context, key, member []byte) error
	SRem(ctx context.Context, key, member []byte) error
	SMembers(ctx context.Context, key []byte) ([][]byte, error)
	Keys(ctx context.Context, prefix []byte) iter.Seq2[[]byte, error]
	MeshKeys(ctx context.Context, prefix []byte) ([][]byte, error)
	Watch(ctx context.Context, prefix []byte) (<-chan node.Event, error)

	ExportStates(ctx context.Context) iter.Seq2[node.StateRecord, error]
	MergeStates(ctx context.Context, recs []node.StateRecord) error
	Members(ctx context.Context) ([]node.Member, error)
	Connect(ctx context.Context, addr multiaddr.Multiaddr) error
	Ready(ctx context.Context) error
	ValueLimit() int
}
