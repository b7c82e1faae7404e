package node

import (
	"context"
	gosync "sync"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
)

// guardedStore makes Close a barrier for the store: every call (and every
// query until its results are closed) holds a read lock, and shutdown takes
// the write lock before the store is closed, so it waits for the calls in
// flight and every later one returns ErrClosed. Readers outside the event
// loop (Get, Keys, ExportStates, stream handlers, handoff) never touch a
// closed store. A Keys loop body must therefore not call Close.
type guardedStore struct {
	ds.Batching
	mu     gosync.RWMutex
	closed bool
}

var _ ds.Batching = (*guardedStore)(nil)

// enter takes the read lock, or fails once the store is closed.
func (g *guardedStore) enter() error {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// shut waits for the calls in flight and refuses every later one.
func (g *guardedStore) shut() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

func (g *guardedStore) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	if err := g.enter(); err != nil {
		return nil, err
	}
	defer g.mu.RUnlock()
	return g.Batching.Get(ctx, k)
}

func (g *guardedStore) Has(ctx context.Context, k ds.Key) (bool, error) {
	if err := g.enter(); err != nil {
		return false, err
	}
	defer g.mu.RUnlock()
	return g.Batching.Has(ctx, k)
}

func (g *guardedStore) GetSize(ctx context.Context, k ds.Key) (int, error) {
	if err := g.enter(); err != nil {
		return 0, err
	}
	defer g.mu.RUnlock()
	return g.Batching.GetSize(ctx, k)
}

func (g *guardedStore) Put(ctx context.Context, k ds.Key, v []byte) error {
	if err := g.enter(); err != nil {
		return err
	}
	defer g.mu.RUnlock()
	return g.Batching.Put(ctx, k, v)
}

func (g *guardedStore) Delete(ctx context.Context, k ds.Key) error {
	if err := g.enter(); err != nil {
		return err
	}
	defer g.mu.RUnlock()
	return g.Batching.Delete(ctx, k)
}

func (g *guardedStore) Sync(ctx context.Context, prefix ds.Key) error {
	if err := g.enter(); err != nil {
		return err
	}
	defer g.mu.RUnlock()
	return g.Batching.Sync(ctx, prefix)
}

// Batch holds the read lock until the batch is committed.
func (g *guardedStore) Batch(ctx context.Context) (ds.Batch, error) {
	if err := g.enter(); err != nil {
		return nil, err
	}
	b, err := g.Batching.Batch(ctx)
	if err != nil {
		g.mu.RUnlock()
		return nil, err
	}
	return &guardedBatch{Batch: b, release: gosync.OnceFunc(g.mu.RUnlock)}, nil
}

// Query holds the read lock until the results are closed.
func (g *guardedStore) Query(ctx context.Context, q dsq.Query) (dsq.Results, error) {
	if err := g.enter(); err != nil {
		return nil, err
	}
	res, err := g.Batching.Query(ctx, q)
	if err != nil {
		g.mu.RUnlock()
		return nil, err
	}
	return &guardedResults{Results: res, release: gosync.OnceFunc(g.mu.RUnlock)}, nil
}

type guardedBatch struct {
	ds.Batch
	release func()
}

func (b *guardedBatch) Commit(ctx context.Context) error {
	defer b.release()
	return b.Batch.Commit(ctx)
}

type guardedResults struct {
	dsq.Results
	release func()
}

func (r *guardedResults) Close() error {
	defer r.release()
	return r.Results.Close()
}
