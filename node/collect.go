package node

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gossipmesh/gossipmesh/node/retention"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
)

// Tombstone collection (see package retention for the rules).
//
//	/t/<16 hex digits of wall>/<hex key> -> empty
//
// An index entry is written in the same batch as every register tombstone,
// so the sweep reads the index in time order and stops at the first entry
// younger than the grace: its cost follows the tombstones due, not the
// store. An entry whose key was written again since is stale and simply
// removed when its time comes.
const tombPrefix = "/t"

// sweepChunk bounds the index entries one event-loop turn collects, so a
// large sweep never holds up writers for long.
const sweepChunk = 256

func tombKey(wall int64, key []byte) ds.Key {
	return ds.RawKey(fmt.Sprintf("%s/%016x/%s", tombPrefix, uint64(max(wall, 0)), hex.EncodeToString(key)))
}

// parseTombKey splits an index entry into its wall time and user key.
func parseTombKey(k string) (int64, []byte, error) {
	rest, ok := strings.CutPrefix(k, tombPrefix+"/")
	wallHex, keyHex, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || len(wallHex) != 16 {
		return 0, nil, fmt.Errorf("%w: unexpected tombstone index key %q", ErrStore, k)
	}
	wall, err := strconv.ParseUint(wallHex, 16, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: tombstone index key %q: %v", ErrStore, k, err)
	}
	key, err := hex.DecodeString(keyHex)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: tombstone index key %q: %v", ErrStore, k, err)
	}
	return int64(wall), key, nil
}

// dueTomb is an index entry whose tombstone may be collectable.
type dueTomb struct {
	wall int64
	key  []byte
}

// collectLoop sweeps the tombstone index every retention.SweepInterval.
func (n *Node) collectLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.retain.SweepInterval())
	defer t.Stop()
	for {
		select {
		case <-n.closing:
			return
		case <-t.C:
		}
		if _, err := n.CollectTombstones(n.ctx); err != nil && n.ctx.Err() == nil {
			n.log.Warn("tombstone sweep failed", "err", err)
		}
	}
}

// CollectTombstones deletes every register tombstone older than
// Config.TombstoneGrace now, except in partitions waiting to be reconciled
// after a long absence (see quarantine.go), and returns how many it
// deleted. It first quarantines partitions whose last reconciliation has
// lapsed. The node runs it by itself
// every eighth of the grace (at least every minute); call it to collect
// at once, for example before compacting the store.
func (n *Node) CollectTombstones(ctx context.Context) (int, error) {
	now := n.cfg.Now().UnixNano()
	if err := n.quarantineLapsed(ctx, now); err != nil {
		return 0, err
	}
	res, err := n.store.Query(ctx, dsq.Query{Prefix: tombPrefix, KeysOnly: true, Orders: []dsq.Order{dsq.OrderByKey{}}})
	if err != nil {
		return 0, storeErr(err)
	}
	defer res.Close()
	cutoff := n.retain.Cutoff(now)
	total := 0
	chunk := make([]dueTomb, 0, sweepChunk)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		err := n.do(ctx, func(tx *txn) error {
			c, err := tx.collectDue(chunk, now)
			total += c
			return err
		})
		chunk = chunk[:0]
		return err
	}
	for r := range res.Next() {
		if r.Error != nil {
			return total, storeErr(r.Error)
		}
		wall, key, err := parseTombKey(r.Key)
		if err != nil {
			return total, err
		}
		if wall >= cutoff {
			break // in time order: nothing later is due
		}
		if chunk = append(chunk, dueTomb{wall, key}); len(chunk) == sweepChunk {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
	if err := flush(); err != nil {
		return total, err
	}
	n.stats.tombstonesCollected.Add(uint64(total))
	return total, nil
}

// collectDue collects the due entries' tombstones and removes the entries;
// an entry of a stale partition is kept until the partition is reconciled.
func (tx *txn) collectDue(due []dueTomb, now int64) (int, error) {
	collected := 0
	for _, d := range due {
		p := partitionOf(d.key, tx.n.cfg.Partitions)
		if tx.n.quar.stale(p) {
			continue
		}
		s, err := tx.get(d.key)
		if err != nil {
			return collected, err
		}
		wall, isTomb := retention.TombstoneWall(s)
		if isTomb && wall == d.wall && tx.n.retain.Collectable(s, now) {
			tx.dropCollected(d.key)
			collected++
		}
		tx.unindex = append(tx.unindex, tombKey(d.wall, d.key))
	}
	return collected, nil
}

// dropCollected stages the deletion of a collected tombstone (or of a
// quarantined state no fresh holder has). Nothing is acknowledged by it,
// so it asks for no sync of its own.
func (tx *txn) dropCollected(key []byte) {
	tx.stageDrop(key)
}

// Tombstones counts the register tombstones this node stores, awaiting
// collection.
func (n *Node) Tombstones(ctx context.Context) (int, error) {
	res, err := n.store.Query(ctx, dsq.Query{Prefix: tombPrefix, KeysOnly: true})
	if err != nil {
		return 0, storeErr(err)
	}
	defer res.Close()
	count := 0
	for r := range res.Next() {
		if r.Error != nil {
			return count, storeErr(r.Error)
		}
		wall, key, err := parseTombKey(r.Key)
		if err != nil {
			return count, err
		}
		b, err := loadState(ctx, n.store, key)
		if err != nil || b == nil {
			continue
		}
		if s, err := decodeStored(key, b); err == nil {
			if w, ok := retention.TombstoneWall(s); ok && w == wall {
				count++
			}
		}
	}
	return count, nil
}

// indexTombstones writes the index entry of every stored tombstone, for a
// store written before the index existed; the marker records it is done.
func indexTombstones(ctx context.Context, store ds.Batching) error {
	const marker = "/meta/tombindex"
	done, err := store.Has(ctx, ds.NewKey(marker))
	if err != nil || done {
		return storeErr(err)
	}
	b, err := store.Batch(ctx)
	if err != nil {
		return storeErr(err)
	}
	err = scanStates(ctx, store, func(key, state []byte) error {
		s, err := decodeStored(key, state)
		if err != nil {
			return nil // rebuildTrees reports it
		}
		if wall, ok := retention.TombstoneWall(s); ok {
			return b.Put(ctx, tombKey(wall, key), []byte{})
		}
		return nil
	})
	if err == nil {
		err = b.Put(ctx, ds.NewKey(marker), []byte{1})
	}
	if err == nil {
		err = b.Commit(ctx)
	}
	return storeErr(err)
}
