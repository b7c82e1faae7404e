package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/sync/antientropy"
)

// A register stamped far in the future is refused on every path that
// takes states from outside; on anti-entropy it is refused alone, and the
// honest records of the same session are merged.
func TestFutureStateIsRefusedOnEveryPath(t *testing.T) {
	ctx := context.Background()
	n := startNodes(t, 1, nil)[0]
	future := &crdt.LWW{}
	future.Set([]byte("pinned"), crdt.Timestamp{Wall: time.Now().Add(24 * time.Hour).UnixNano(), Node: 9})
	honest := &crdt.LWW{}
	honest.Set([]byte("ok"), crdt.Timestamp{Wall: time.Now().UnixNano(), Node: 9})

	if _, err := n.checkRecord([]byte("k"), crdt.Encode(future)); !errors.Is(err, crdt.ErrClockDrift) {
		t.Fatalf("checkRecord: %v, want ErrClockDrift", err)
	}
	err := n.MergeStates(ctx, []StateRecord{{Key: []byte("k"), State: crdt.Encode(future)}})
	if !errors.Is(err, crdt.ErrClockDrift) {
		t.Fatalf("restore of a future state: %v, want ErrClockDrift", err)
	}
	rec := func(key string, s crdt.State) antientropy.Record {
		return antientropy.Record{Partition: partitionOf([]byte(key), n.cfg.Partitions), Key: []byte(key), State: crdt.Encode(s)}
	}
	before := n.stats.deltasInvalid.Load()
	err = n.do(ctx, func(tx *txn) error {
		return n.mergeRecords(tx, "attacker", []antientropy.Record{rec("bad", future), rec("good", honest)})
	})
	if err != nil {
		t.Fatalf("one bad record aborted the merge: %v", err)
	}
	if v, err := n.Get(ctx, []byte("good")); err != nil || string(v) != "ok" {
		t.Fatalf("honest record of the session: %q, %v", v, err)
	}
	if _, err := n.Get(ctx, []byte("bad")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("future record merged: %v", err)
	}
	if n.stats.deltasInvalid.Load() != before+1 {
		t.Fatal("the refused record was not counted")
	}
}

// A kind generation is a timestamp like any other in a state: one stamped
// beyond the drift limit would outrank every honest kind change after it,
// so it is refused on the one validation path; one within it is taken.
func TestFutureGenerationIsRefused(t *testing.T) {
	ctx := context.Background()
	n := startNodes(t, 1, nil)[0]
	at := func(d time.Duration) []byte {
		s, err := crdt.NewAt(crdt.KindCounter, crdt.Timestamp{Wall: time.Now().Add(d).UnixNano(), Node: 9})
		if err != nil {
			t.Fatal(err)
		}
		s.(*crdt.Counter).Add(9, 1)
		return crdt.Encode(s)
	}
	if _, err := n.checkRecord([]byte("k"), at(24*time.Hour)); !errors.Is(err, crdt.ErrClockDrift) {
		t.Fatalf("checkRecord: %v, want ErrClockDrift", err)
	}
	if err := n.MergeStates(ctx, []StateRecord{{Key: []byte("k"), State: at(24 * time.Hour)}}); !errors.Is(err, crdt.ErrClockDrift) {
		t.Fatalf("restore of a future generation: %v, want ErrClockDrift", err)
	}
	if err := n.MergeStates(ctx, []StateRecord{{Key: []byte("k"), State: at(n.cfg.MaxClockDrift / 2)}}); err != nil {
		t.Fatalf("restore of a generation within the drift: %v", err)
	}
	if v, err := n.Counter(ctx, []byte("k")); err != nil || v != 1 {
		t.Fatalf("counter = %d, %v", v, err)
	}
}
