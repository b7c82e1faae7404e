package retention_test

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/node/retention"
	"pgregory.net/rapid"
)

const grace = 100 * time.Nanosecond

// replica applies the node's two rules to one register: a state that is
// collectable on arrival is not stored (and removes what it supersedes),
// and a sweep deletes a collectable tombstone.
type replica struct {
	p     retention.Policy
	state *crdt.LWW // nil: absent
}

func (r *replica) receive(w *crdt.LWW, now int64) {
	next := w.Clone().(*crdt.LWW)
	if r.state != nil {
		next.Merge(r.state)
	}
	if r.p.Collectable(next, now) {
		r.state = nil
		return
	}
	r.state = next
}

func (r *replica) sweep(now int64) {
	if r.state != nil && r.p.Collectable(r.state, now) {
		r.state = nil
	}
}

type event struct {
	at    int64
	write *crdt.LWW // nil: a sweep
}

// Two replicas that get every write within the grace, in any order, and
// collect at any moments of their own, end in the same state: the full
// merge of the writes, collected as of the end.
func TestReplicasCollectingAtDifferentMomentsConverge(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := retention.Policy{Grace: grace}
		var writes []*crdt.LWW
		for i := range rapid.IntRange(1, 8).Draw(t, "writes") {
			ts := crdt.Timestamp{Wall: rapid.Int64Range(1, 300).Draw(t, "wall"), Node: crdt.NodeIDFromBytes([]byte{byte(i)})}
			var w crdt.LWW
			if rapid.Bool().Draw(t, "delete") {
				w.Delete(ts)
			} else {
				w.Set([]byte{byte(i)}, ts)
			}
			writes = append(writes, &w)
		}
		end := int64(300) + 2*int64(grace)
		var final []*crdt.LWW
		for _, name := range []string{"a", "b"} {
			var evs []event
			for _, w := range writes {
				lag := rapid.Int64Range(0, int64(grace)-1).Draw(t, name+" lag")
				evs = append(evs, event{at: w.Timestamp().Wall + lag, write: w})
			}
			for range rapid.IntRange(0, 6).Draw(t, name+" sweeps") {
				evs = append(evs, event{at: rapid.Int64Range(0, end).Draw(t, name+" sweep")})
			}
			slices.SortStableFunc(evs, func(x, y event) int { return cmp.Compare(x.at, y.at) })
			r := &replica{p: p}
			for _, e := range evs {
				if e.write != nil {
					r.receive(e.write, e.at)
				} else {
					r.sweep(e.at)
				}
			}
			r.sweep(end)
			final = append(final, r.state)
		}
		want := &crdt.LWW{}
		for _, w := range writes {
			want.Merge(w)
		}
		for i, got := range final {
			if want.Deleted() {
				if got != nil {
					t.Fatalf("replica %d holds %v after every tombstone's grace, want nothing", i, got.Timestamp())
				}
				continue
			}
			if got == nil || !crdt.Equal(got, want) {
				t.Fatalf("replica %d ends with %v, want the merge of every write", i, got)
			}
		}
	})
}

func TestStaleAndOld(t *testing.T) {
	p := retention.Policy{Grace: time.Hour}
	now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC).UnixNano()
	if p.Stale(0, now) {
		t.Fatal("a partition never reconciled is stale")
	}
	if !p.Stale(now-int64(2*time.Hour), now) || p.Stale(now-int64(time.Minute), now) {
		t.Fatal("staleness does not follow the grace")
	}
	var old, fresh crdt.LWW
	old.Set([]byte("v"), crdt.Timestamp{Wall: now - int64(2*time.Hour)})
	fresh.Set([]byte("v"), crdt.Timestamp{Wall: now - int64(time.Minute)})
	if !p.Old(&old, now) || p.Old(&fresh, now) || p.Old(&crdt.Counter{}, now) {
		t.Fatal("Old does not follow the grace, or counts a counter")
	}
	if p.Collectable(&old, now) {
		t.Fatal("a live value is collectable")
	}
	var tomb crdt.LWW
	tomb.Delete(crdt.Timestamp{Wall: now - int64(2*time.Hour)})
	if !p.Collectable(&tomb, now) || p.Collectable(&crdt.ORSet{}, now) {
		t.Fatal("an old tombstone is kept, or an empty set is collected")
	}
	if got := p.SweepInterval(); got != time.Minute {
		t.Fatalf("sweep interval for a 1 h grace = %v, want 1m", got)
	}
}

// A tombstone written at a non-zero kind generation (a delete that
// replaced another kind) is never collected nor indexed for collection,
// however old: a replica that was away may still hold the kind it
// replaced.
func TestTombstoneOfAKindChangeIsKept(t *testing.T) {
	p := retention.Policy{Grace: grace}
	gen := crdt.Timestamp{Wall: 5, Node: 1}
	s, err := crdt.NewAt(crdt.KindLWW, gen)
	if err != nil {
		t.Fatal(err)
	}
	s.(*crdt.LWW).Delete(crdt.Timestamp{Wall: 6, Node: 1})
	now := int64(10 * grace)
	if p.Collectable(s, now) {
		t.Fatal("tombstone of a kind change is collectable")
	}
	if _, ok := retention.TombstoneWall(s); ok {
		t.Fatal("tombstone of a kind change is indexed for collection")
	}
	plain := &crdt.LWW{}
	plain.Delete(crdt.Timestamp{Wall: 6, Node: 1})
	if !p.Collectable(plain, now) {
		t.Fatal("tombstone of generation zero is not collectable")
	}
}
