package httpapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"sort"
	"sync"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/gossipmesh/gossipmesh/node/httpapi"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// Fake is a map-backed Backend with the node's key rules and error
// sentinels. It is not a CRDT: merges overwrite. Safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	entries map[string]*entry
	watches map[int]*fakeWatch
	nextW   int
	stats   node.Stats

	// Err, when set, is returned by every operation (to test error paths).
	Err error
	// MaxKeyBytes and MaxValueBytes mirror node.Config. Defaults 1024, 1 MiB.
	MaxKeyBytes, MaxValueBytes int
	// PeerID, AddrList and PeerList are what ID, Addrs and Peers report.
	PeerID   peer.ID
	AddrList []multiaddr.Multiaddr
	PeerList []node.PeerInfo
	// MemberList is what Members reports after this node itself.
	MemberList []node.Member
	// Joined records the addresses given to Connect; ConnectErr, when
	// set, is what Connect returns.
	Joined     []multiaddr.Multiaddr
	ConnectErr error
	// NotReady, when set, is what Ready returns.
	NotReady error
	store    node.Status // see SetStore
}

// SetStore sets what Status reports of the store: StoreFull,
// StoreFullReason, FreeBytes, StoreBytes, MaxStoreBytes and AnnouncedFull
// are taken from st.
func (f *Fake) SetStore(st node.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.store = st
}

type entry struct {
	Kind    node.Kind
	Value   []byte   `json:",omitempty"`
	Deleted bool     `json:",omitempty"`
	Count   int64    `json:",omitempty"`
	Members [][]byte `json:",omitempty"`
	Values  [][]byte `json:",omitempty"`
}

type fakeWatch struct {
	prefix []byte
	ch     chan node.Event
}

// NewFake returns an empty Fake with a fixed peer ID and address.
func NewFake() *Fake {
	id, err := peer.Decode("12D3KooWGRUVh6ZKXaVtHvD2wR3Bf1oMMSEbqWPnU8Xr6S3ChqPk")
	if err != nil {
		panic(err)
	}
	return &Fake{
		entries: map[string]*entry{}, watches: map[int]*fakeWatch{},
		MaxKeyBytes: 1024, MaxValueBytes: 1 << 20,
		PeerID:   id,
		AddrList: []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/4001/p2p/" + id.String())},
		stats:    node.Stats{BytesSent: map[string]uint64{}, BytesReceived: map[string]uint64{}},
	}
}

func (f *Fake) check(key, value []byte) error {
	if f.Err != nil {
		return f.Err
	}
	switch {
	case len(key) == 0:
		return fmt.Errorf("%w: empty key", node.ErrInvalidKey)
	case len(key) > f.MaxKeyBytes:
		return fmt.Errorf("%w: %d bytes", node.ErrKeyTooLarge, len(key))
	case len(value) > f.MaxValueBytes:
		return fmt.Errorf("%w: %d bytes", node.ErrValueTooLarge, len(value))
	}
	return nil
}

// entryFor returns key's entry of kind k, creating it when create is set.
// Called with f.mu held.
func (f *Fake) entryFor(key []byte, k node.Kind, create bool) (*entry, error) {
	e, ok := f.entries[string(key)]
	if !ok {
		if !create {
			return nil, fmt.Errorf("%w: %q", node.ErrNotFound, key)
		}
		e = &entry{Kind: k}
		f.entries[string(key)] = e
	}
	if e.Kind != k {
		return nil, fmt.Errorf("%w: %q is a %s", node.ErrWrongKind, key, e.Kind)
	}
	return e, nil
}

// notify sends ev to matching watchers. Called with f.mu held; like the
// node, a watcher that cannot keep up is closed.
func (f *Fake) notify(ev node.Event) {
	for id, w := range f.watches {
		if bytes.HasPrefix(ev.Key, w.prefix) {
			select {
			case w.ch <- ev:
			default:
				close(w.ch)
				delete(f.watches, id)
			}
		}
	}
}

func (f *Fake) write(key, value []byte, k node.Kind, fn func(*entry)) error {
	if err := f.check(key, value); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, err := f.entryFor(key, k, true)
	if err != nil {
		return err
	}
	fn(e)
	f.stats.Puts++
	ev := node.Event{Key: bytes.Clone(key), Kind: k, Deleted: e.Deleted}
	switch k {
	case node.KindRegister:
		if !e.Deleted {
			ev.Value = bytes.Clone(e.Value)
		}
	case node.KindCounter:
		ev.Counter = e.Count
	case node.KindSet:
		ev.Members = slices.Clone(e.Members)
		slices.SortFunc(ev.Members, bytes.Compare)
	}
	f.notify(ev)
	return nil
}

func (f *Fake) read(key []byte, k node.Kind, fn func(*entry) error) error {
	if err := f.check(key, nil); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Gets++
	e, err := f.entryFor(key, k, false)
	if err != nil {
		return err
	}
	return fn(e)
}

func (f *Fake) ID() peer.ID                  { return f.PeerID }
func (f *Fake) Addrs() []multiaddr.Multiaddr { return f.AddrList }
func (f *Fake) Peers() []node.PeerInfo       { return f.PeerList }

// Stats returns the fake's put and get counts, and whatever SetStats set.
func (f *Fake) Stats() node.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// SetStats replaces the counters Stats reports.
func (f *Fake) SetStats(s node.Stats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats = s
}

// Status reports one partition holding every key, with a root that is a
// digest of the content, so equal contents give equal roots.
func (f *Fake) Status(ctx context.Context) (node.Status, error) {
	if f.Err != nil {
		return node.Status{}, f.Err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := make([]string, 0, len(f.entries))
	for k := range f.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var root [16]byte
	for _, k := range keys {
		b, _ := json.Marshal(f.entries[k])
		for i, c := range append([]byte(k), b...) {
			root[i%16] = root[i%16]*31 + c
		}
	}
	return node.Status{
		PeerID: f.PeerID, Mesh: "default", Keys: len(keys), Peers: len(f.PeerList),
		Partitions: []node.PartitionStatus{{Partition: 0, Root: root, Keys: len(keys)}},
		StoreFull:  f.store.StoreFull, StoreFullReason: f.store.StoreFullReason, FreeBytes: f.store.FreeBytes,
		StoreBytes: f.store.StoreBytes, MaxStoreBytes: f.store.MaxStoreBytes, AnnouncedFull: f.store.AnnouncedFull,
	}, nil
}

func (f *Fake) Put(ctx context.Context, key, value []byte) error {
	return f.write(key, value, node.KindRegister, func(e *entry) { e.Value, e.Deleted = bytes.Clone(value), false })
}

func (f *Fake) Get(ctx context.Context, key []byte) ([]byte, error) {
	var v []byte
	err := f.read(key, node.KindRegister, func(e *entry) error {
		if e.Deleted {
			return fmt.Errorf("%w: %q", node.ErrNotFound, key)
		}
		v = bytes.Clone(e.Value)
		return nil
	})
	return v, err
}

func (f *Fake) Delete(ctx context.Context, key []byte) error {
	return f.write(key, nil, node.KindRegister, func(e *entry) { e.Value, e.Deleted = nil, true })
}

func (f *Fake) WriteMV(ctx context.Context, key, value []byte) error {
	return f.write(key, value, node.KindMVRegister, func(e *entry) { e.Values = [][]byte{bytes.Clone(value)} })
}

func (f *Fake) GetMV(ctx context.Context, key []byte) ([][]byte, error) {
	var v [][]byte
	err := f.read(key, node.KindMVRegister, func(e *entry) error { v = slices.Clone(e.Values); return nil })
	return v, err
}

func (f *Fake) Incr(ctx context.Context, key []byte, delta int64) (int64, error) {
	var v int64
	err := f.write(key, nil, node.KindCounter, func(e *entry) { e.Count += delta; v = e.Count })
	return v, err
}

func (f *Fake) Counter(ctx context.Context, key []byte) (int64, error) {
	var v int64
	err := f.read(key, node.KindCounter, func(e *entry) error { v = e.Count; return nil })
	return v, err
}

func (f *Fake) SAdd(ctx context.Context, key, member []byte) error {
	return f.write(key, member, node.KindSet, func(e *entry) {
		if !slices.ContainsFunc(e.Members, func(m []byte) bool { return bytes.Equal(m, member) }) {
			e.Members = append(e.Members, bytes.Clone(member))
		}
	})
}

func (f *Fake) SRem(ctx context.Context, key, member []byte) error {
	return f.write(key, member, node.KindSet, func(e *entry) {
		e.Members = slices.DeleteFunc(e.Members, func(m []byte) bool { return bytes.Equal(m, member) })
	})
}

func (f *Fake) SMembers(ctx context.Context, key []byte) ([][]byte, error) {
	var v [][]byte
	err := f.read(key, node.KindSet, func(e *entry) error {
		v = slices.Clone(e.Members)
		slices.SortFunc(v, bytes.Compare)
		return nil
	})
	return v, err
}

// Keys yields live keys under prefix in byte order.
func (f *Fake) Keys(ctx context.Context, prefix []byte) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		if f.Err != nil {
			yield(nil, f.Err)
			return
		}
		f.mu.Lock()
		var keys []string
		for k, e := range f.entries {
			if bytes.HasPrefix([]byte(k), prefix) && !e.Deleted {
				keys = append(keys, k)
			}
		}
		f.mu.Unlock()
		sort.Strings(keys)
		for _, k := range keys {
			if !yield([]byte(k), nil) {
				return
			}
		}
	}
}

// MeshKeys is Keys collected: the fake is the whole mesh.
func (f *Fake) MeshKeys(ctx context.Context, prefix []byte) ([][]byte, error) {
	var out [][]byte
	for k, err := range f.Keys(ctx, prefix) {
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// Watch follows the node's contract: the channel closes when ctx ends.
func (f *Fake) Watch(ctx context.Context, prefix []byte) (<-chan node.Event, error) {
	if f.Err != nil {
		return nil, f.Err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextW
	f.nextW++
	w := &fakeWatch{prefix: bytes.Clone(prefix), ch: make(chan node.Event, 64)}
	f.watches[id] = w
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.watches[id] == w {
			delete(f.watches, id)
			close(w.ch)
		}
	}()
	return w.ch, nil
}

// Watchers reports how many watches are open, so tests can wait for a
// watch to be registered before writing.
func (f *Fake) Watchers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watches)
}

// CloseWatches ends every watch, as a closing node does.
func (f *Fake) CloseWatches() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, w := range f.watches {
		close(w.ch)
		delete(f.watches, id)
	}
}

// ExportStates yields every entry, tombstones included, as JSON "states".
func (f *Fake) ExportStates(ctx context.Context) iter.Seq2[node.StateRecord, error] {
	return func(yield func(node.StateRecord, error) bool) {
		if f.Err != nil {
			yield(node.StateRecord{}, f.Err)
			return
		}
		f.mu.Lock()
		keys := make([]string, 0, len(f.entries))
		recs := map[string][]byte{}
		for k, e := range f.entries {
			keys = append(keys, k)
			recs[k], _ = json.Marshal(e)
		}
		f.mu.Unlock()
		sort.Strings(keys)
		for _, k := range keys {
			if !yield(node.StateRecord{Key: []byte(k), State: recs[k]}, nil) {
				return
			}
		}
	}
}

// MergeStates validates every record, then stores them (overwriting).
func (f *Fake) MergeStates(ctx context.Context, recs []node.StateRecord) error {
	decoded := make([]*entry, len(recs))
	for i, r := range recs {
		if err := f.check(r.Key, nil); err != nil {
			return err
		}
		decoded[i] = new(entry)
		if err := json.Unmarshal(r.State, decoded[i]); err != nil {
			return fmt.Errorf("fake: state of %q: %v", r.Key, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range recs {
		f.entries[string(r.Key)] = decoded[i]
	}
	return nil
}

// Members reports the fake itself, alive and holding partition 0, then
// MemberList.
func (f *Fake) Members(ctx context.Context) ([]node.Member, error) {
	if f.Err != nil {
		return nil, f.Err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	self := node.Member{ID: f.PeerID, State: node.MemberAlive, Self: true, Addrs: f.AddrList, Partitions: []uint32{0}}
	return append([]node.Member{self}, f.MemberList...), nil
}

// Connect records addr in Joined and returns ConnectErr.
func (f *Fake) Connect(ctx context.Context, addr multiaddr.Multiaddr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Joined = append(f.Joined, addr)
	return f.ConnectErr
}

// Ready returns Err, then NotReady.
func (f *Fake) Ready(ctx context.Context) error {
	if f.Err != nil {
		return f.Err
	}
	return f.NotReady
}

// ValueLimit is MaxValueBytes.
func (f *Fake) ValueLimit() int { return f.MaxValueBytes }

var _ httpapi.Backend = (*Fake)(nil)
