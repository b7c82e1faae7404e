package simulations

import (
	"context"
	"encoding/hex"
	gosync "sync"

	"github.com/gossipmesh/gossipmesh/crdt"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
)

// probeStore is the in-memory datastore a simulated node runs on. It
// outlives the node, so a crash and restart keeps everything committed, and
// it remembers the last state committed for each key, so the harness can
// learn the HLC timestamp an acknowledged register write got: the node
// commits before it acknowledges, so right after the ack the last committed
// state of the key is either the write itself (same unique value: the
// timestamp is exact) or a state that superseded it (a larger timestamp: an
// upper bound). Either way the final state must be at least as new.
//
// It reads the node's datastore layout (/k/<hex key> for states, /h/<hex
// key> for hints, documented in node/store.go). Should that layout change, Stamp finds nothing and the
// checker reports ErrProbe rather than passing silently.
type probeStore struct {
	ds.Batching
	mu   gosync.Mutex
	last map[string][]byte // datastore key -> last committed encoded state
}

var (
	_ ds.Batching = (*probeStore)(nil)
	_ ds.Batch    = (*probeBatch)(nil)
)

func newProbeStore() *probeStore {
	return &probeStore{
		Batching: dssync.MutexWrap(ds.NewMapDatastore()),
		last:     map[string][]byte{},
	}
}

// record remembers v as the last state committed under k. A delete is not
// recorded: under placement a hint is deleted once handed off, and a state
// once its partition moved, possibly before the harness reads the stamp;
// the last state written is still the write or a newer one.
func (p *probeStore) record(k ds.Key, v []byte) {
	if v == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last[k.String()] = v
}

func (p *probeStore) Put(ctx context.Context, k ds.Key, v []byte) error {
	if err := p.Batching.Put(ctx, k, v); err != nil {
		return err
	}
	p.record(k, append([]byte(nil), v...))
	return nil
}

func (p *probeStore) Delete(ctx context.Context, k ds.Key) error {
	if err := p.Batching.Delete(ctx, k); err != nil {
		return err
	}
	p.record(k, nil)
	return nil
}

func (p *probeStore) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := p.Batching.Batch(ctx)
	if err != nil {
		return nil, err
	}
	return &probeBatch{Batch: b, p: p}, nil
}

// Close is a no-op: the node does not close a store it was given, and the
// harness keeps this one across restarts.
func (p *probeStore) Close() error { return nil }

type probeBatch struct {
	ds.Batch
	p       *probeStore
	pending []probeWrite
}

type probeWrite struct {
	key ds.Key
	val []byte // nil for a delete
}

func (b *probeBatch) Put(ctx context.Context, k ds.Key, v []byte) error {
	if err := b.Batch.Put(ctx, k, v); err != nil {
		return err
	}
	b.pending = append(b.pending, probeWrite{k, append([]byte(nil), v...)})
	return nil
}

func (b *probeBatch) Delete(ctx context.Context, k ds.Key) error {
	if err := b.Batch.Delete(ctx, k); err != nil {
		return err
	}
	b.pending = append(b.pending, probeWrite{k, nil})
	return nil
}

func (b *probeBatch) Commit(ctx context.Context) error {
	if err := b.Batch.Commit(ctx); err != nil {
		return err
	}
	for _, w := range b.pending {
		b.p.record(w.key, w.val)
	}
	b.pending = nil
	return nil
}

// stamp returns the register state last committed for key, as a state or
// as a hint (a write through a node that does not hold the key's
// partition), whichever is newer: its timestamp, its value and whether it is
// a tombstone. ok is false when no register state for key was seen.
func (p *probeStore) stamp(key string) (ts crdt.Timestamp, value []byte, deleted, ok bool) {
	for _, prefix := range []string{"/k/", "/h/"} {
		p.mu.Lock()
		raw := p.last[prefix+hex.EncodeToString([]byte(key))]
		p.mu.Unlock()
		if raw == nil {
			continue
		}
		st, err := crdt.Decode(raw)
		if err != nil {
			continue
		}
		reg, isReg := st.(*crdt.LWW)
		if !isReg {
			continue
		}
		if !ok || ts.Compare(reg.Timestamp()) < 0 {
			v, live := reg.Value()
			ts, value, deleted, ok = reg.Timestamp(), v, !live, true
		}
	}
	return ts, value, deleted, ok
}
