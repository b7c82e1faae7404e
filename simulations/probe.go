package simulations

import (
	"context"
	"encoding/hex"
	"errors"
	gosync "sync"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/node"
	ds "github.com/ipfs/go-datastore"
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
//
// It is also crash-true: it keeps a durable copy that only Sync updates,
// and crash throws away everything written since the last Sync, as a power
// loss would. A node's Close after crash can write nothing durable.
type probeStore struct {
	ds.Batching
	mu      gosync.Mutex
	last    map[string][]byte // datastore key -> last committed encoded state
	durable map[string][]byte // datastore key -> value as of the last Sync
	pending []probeWrite      // committed since the last Sync, in order
	crashed bool              // between crash and recover: every write fails
}

var (
	_ ds.Batching            = (*probeStore)(nil)
	_ ds.Batch               = (*probeBatch)(nil)
	_ ds.PersistentDatastore = (*probeStore)(nil)
)

// DiskUsage is the live store's: the bytes it holds, so a simulated node
// can run under a quota (node.Config.MaxStoreBytes).
func (p *probeStore) DiskUsage(ctx context.Context) (uint64, error) {
	p.mu.Lock()
	live := p.Batching
	p.mu.Unlock()
	return ds.DiskUsage(ctx, live)
}

func newProbeStore() *probeStore {
	return &probeStore{
		Batching: node.NewMemoryDatastore(),
		last:     map[string][]byte{},
		durable:  map[string][]byte{},
	}
}

// errCrashed is what writes to a crashed store return.
var errCrashed = errors.New("simulations: store crashed")

// committed notes writes that reached the live store; they become durable
// at the next Sync. It fails, and the caller must not apply them, once the
// store has crashed.
func (p *probeStore) committed(ws ...probeWrite) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = append(p.pending, ws...)
}

func (p *probeStore) writable() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.crashed {
		return errCrashed
	}
	return nil
}

// Sync makes every write committed so far durable.
func (p *probeStore) Sync(ctx context.Context, prefix ds.Key) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.crashed {
		return errCrashed
	}
	for _, w := range p.pending {
		if w.val == nil {
			delete(p.durable, w.key.String())
		} else {
			p.durable[w.key.String()] = w.val
		}
	}
	p.pending = nil
	return nil
}

// crash loses every write since the last Sync and refuses writes until
// recover.
func (p *probeStore) crash() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.crashed = true
	p.pending = nil
}

// recover brings the store back with its durable content only.
func (p *probeStore) recover() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	live := node.NewMemoryDatastore()
	for k, v := range p.durable {
		if err := live.Put(context.Background(), ds.RawKey(k), v); err != nil {
			return err
		}
	}
	p.Batching, p.crashed = live, false
	return nil
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
	if err := p.writable(); err != nil {
		return err
	}
	if err := p.Batching.Put(ctx, k, v); err != nil {
		return err
	}
	v = append([]byte{}, v...) // non-nil even when empty: nil marks a delete
	p.committed(probeWrite{k, v})
	p.record(k, v)
	return nil
}

func (p *probeStore) Delete(ctx context.Context, k ds.Key) error {
	if err := p.writable(); err != nil {
		return err
	}
	if err := p.Batching.Delete(ctx, k); err != nil {
		return err
	}
	p.committed(probeWrite{k, nil})
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
	b.pending = append(b.pending, probeWrite{k, append([]byte{}, v...)}) // non-nil: nil marks a delete
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
	if err := b.p.writable(); err != nil {
		return err
	}
	if err := b.Batch.Commit(ctx); err != nil {
		return err
	}
	b.p.committed(b.pending...)
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
