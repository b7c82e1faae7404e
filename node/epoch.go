package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gossipmesh/gossipmesh/crdt"
	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Unclean restarts. A write leaves the node only once it is durable, but a
// batch is readable (by anti-entropy, by handoff) between its write and its
// fsync, so after a crash that loses unsynced data a node may restart
// behind a counter total or a dot it already gave away. Its next increment
// or add from that older state would then be absorbed by the one peers
// hold. So every start without a clean-shutdown marker bumps a persisted
// epoch, and the node's actor identity in counters and dots (Node.actor)
// mixes in the epoch: a new actor's contributions cannot collide with
// anything an earlier one gave away. A clean stop writes the marker after
// its last sync, so a clean restart keeps its actor. Each unclean start
// adds one counter entry per key later written, which is the price.
const (
	epochKey = "/meta/epoch" // uint64, big endian: the current epoch
	cleanKey = "/meta/clean" // present: the last run stopped cleanly
)

// startEpoch returns the epoch for this run and durably records that the
// run has begun (the clean marker is removed). A store that has an epoch
// but no marker, or data but no epoch (written before epochs were kept),
// was not stopped cleanly: the epoch is bumped.
func startEpoch(ctx context.Context, store ds.Batching, hasData bool) (uint64, error) {
	b, err := loadRaw(ctx, store, ds.NewKey(epochKey))
	if err != nil {
		return 0, err
	}
	var epoch uint64
	if b != nil {
		if len(b) != 8 {
			return 0, fmt.Errorf("%w: epoch record of %d bytes", ErrStore, len(b))
		}
		epoch = binary.BigEndian.Uint64(b)
	}
	clean, err := store.Has(ctx, ds.NewKey(cleanKey))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrStore, err)
	}
	if !clean && (b != nil || hasData) {
		epoch++
	}
	if err := store.Put(ctx, ds.NewKey(epochKey), binary.BigEndian.AppendUint64(nil, epoch)); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrStore, err)
	}
	if err := store.Delete(ctx, ds.NewKey(cleanKey)); err != nil && !errors.Is(err, ds.ErrNotFound) {
		return 0, fmt.Errorf("%w: %v", ErrStore, err)
	}
	if err := store.Sync(ctx, ds.NewKey("/meta")); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrStore, err)
	}
	return epoch, nil
}

// markClean records a clean stop; the caller has stopped every writer.
func markClean(ctx context.Context, store ds.Batching) error {
	if err := store.Put(ctx, ds.NewKey(cleanKey), []byte{1}); err != nil {
		return err
	}
	return store.Sync(ctx, ds.NewKey("/meta"))
}

// actorID is the identity under which a node's epoch writes counter
// entries and dots. Epoch 0 keeps the identity of the peer ID alone, as
// before epochs existed.
func actorID(id peer.ID, epoch uint64) crdt.NodeID {
	if epoch == 0 {
		return crdt.NodeIDFromBytes([]byte(id))
	}
	return crdt.NodeIDFromBytes(fmt.Appendf([]byte(id), "/epoch/%d", epoch))
}
