package node

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
)

// testClock is a physical clock the test can move forward, shared by the
// nodes of a test so their clocks never drift apart.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func tombstonesOf(t testing.TB, n *Node) int {
	t.Helper()
	c, err := n.Tombstones(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// passTime moves the clock d forward in steps of a third of the grace,
// with a completed session of every node after each: time passes for a
// mesh that keeps reconciling, so no node's last session lapses.
func passTime(t testing.TB, clk *testClock, d, grace time.Duration, nodes ...*Node) {
	t.Helper()
	for step := grace / 3; d > 0; d -= step {
		clk.advance(min(step, d))
		for _, n := range nodes {
			waitSession(t, n)
		}
	}
}

// waitSession waits until n completes an anti-entropy session after the
// call, so its session times are taken after whatever came before.
func waitSession(t testing.TB, n *Node) {
	t.Helper()
	before := n.Stats().SyncSessions
	waitFor(t, 30*time.Second, "a completed session", func() error {
		if n.Stats().SyncSessions < before+2 {
			n.TriggerSync()
			return fmt.Errorf("%d sessions since", n.Stats().SyncSessions-before)
		}
		return nil
	})
}

// Collection runs, frees the keys, keeps every key written again after its
// delete, and converges even though the two replicas collect at different
// moments: a collected tombstone that a slower replica sends back is not
// stored again.
func TestTombstonesAreCollectedWithoutPingPong(t *testing.T) {
	ctx := context.Background()
	clk := &testClock{}
	nodes := startNodes(t, 2, func(c *Config) { c.Now, c.TombstoneGrace = clk.Now, time.Hour })
	a, b := nodes[0], nodes[1]
	link(t, a, b)
	for i := range 100 {
		k := fmt.Appendf(nil, "k%03d", i)
		if err := a.Put(ctx, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
		if err := a.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 { // written again: its old index entry must not collect it
			if err := a.Put(ctx, k, []byte("again")); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, 30*time.Second, "equal roots", converged(t, nodes))
	if got := tombstonesOf(t, b); got != 90 {
		t.Fatalf("b holds %d tombstones, want 90", got)
	}
	passTime(t, clk, 2*time.Hour, time.Hour, a, b)
	if got, err := a.CollectTombstones(ctx); err != nil || got != 90 {
		t.Fatalf("a collected %d, %v; want 90", got, err)
	}
	// b still holds them; sessions between the two must not bring them back to a.
	waitSession(t, a)
	if got := tombstonesOf(t, a); got != 0 {
		t.Fatalf("a holds %d tombstones again after a session with b, want 0", got)
	}
	if got, err := b.CollectTombstones(ctx); err != nil || got != 90 {
		t.Fatalf("b collected %d, %v; want 90", got, err)
	}
	waitFor(t, 30*time.Second, "equal roots after collection", converged(t, nodes))
	for _, n := range nodes {
		st, err := n.Status(ctx)
		if err != nil || st.Keys != 10 {
			t.Fatalf("%d keys stored after collection (%v), want the 10 written again", st.Keys, err)
		}
		if got, err := n.Get(ctx, []byte("k010")); err != nil || string(got) != "again" {
			t.Fatalf("k010 = %q, %v; want again", got, err)
		}
	}
}

// A node that was away for longer than the grace must not bring back a
// delete the others collected meanwhile, and must keep what it wrote since.
func TestNodeAwayPastGraceResurrectsNothing(t *testing.T) {
	ctx := context.Background()
	clk := &testClock{}
	edit := func(c *Config) { c.Now, c.TombstoneGrace = clk.Now, time.Hour }
	nodes := startNodes(t, 2, edit)
	a, b := nodes[0], nodes[1]
	link(t, a, b)
	again := restartable(t, edit)
	c := startNode(t, again())
	link(t, a, c)
	for i := range 20 {
		if err := a.Put(ctx, fmt.Appendf(nil, "k%02d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	all := []*Node{a, b, c}
	waitFor(t, 30*time.Second, "equal roots", converged(t, all))
	waitSession(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := a.Delete(ctx, fmt.Appendf(nil, "k%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "equal roots without c", converged(t, all[:2]))
	passTime(t, clk, 2*time.Hour, time.Hour, a, b) // c away, a and b reconciling
	for _, n := range all[:2] {
		if got, err := n.CollectTombstones(ctx); err != nil || got != 10 {
			t.Fatalf("collected %d, %v; want 10", got, err)
		}
	}

	c = startNode(t, again())
	if _, err := c.Get(ctx, []byte("k15")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("old value on a returning node: %v, want ErrUnavailable until reconciled", err)
	}
	if err := c.Put(ctx, []byte("while-away"), []byte("new")); err != nil {
		t.Fatal(err)
	}
	link(t, a, c)
	all[2] = c
	waitFor(t, 30*time.Second, "equal roots after the return", converged(t, all))
	for _, n := range all {
		for i := range 20 {
			k := fmt.Appendf(nil, "k%02d", i)
			_, err := n.Get(ctx, k)
			if i < 10 && !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s: deleted and collected, got %v (resurrected)", k, err)
			}
			if i >= 10 && err != nil {
				t.Fatalf("%s: %v", k, err)
			}
		}
		if v, err := n.Get(ctx, []byte("while-away")); err != nil || string(v) != "new" {
			t.Fatalf("the returning node's own new write: %q, %v", v, err)
		}
	}
}

// A register delta older than the grace (a gossip cache replaying it to a
// restarted peer) is not merged: the key may have been deleted and its
// tombstone collected since, and merging it would bring the key back.
func TestGossipOlderThanTheGraceIsNotMerged(t *testing.T) {
	ctx := context.Background()
	clk := &testClock{}
	n := startNode(t, func() Config { c := testConfig(); c.Now, c.TombstoneGrace = clk.Now, time.Hour; return c }())
	var old, fresh crdt.LWW
	now := clk.Now().UnixNano()
	oldTS := crdt.Timestamp{Wall: now - int64(2*time.Hour), Node: crdt.NodeIDFromBytes([]byte("peer"))}
	freshTS := crdt.Timestamp{Wall: now, Node: oldTS.Node}
	old.Set([]byte("from before the grace"), oldTS)
	fresh.Set([]byte("new"), freshTS)
	err := n.do(ctx, func(tx *txn) error {
		return n.applyRemote(tx, &received{records: []receivedRecord{
			{key: []byte("collected"), stamp: oldTS, state: &old},
			{key: []byte("written"), stamp: freshTS, state: &fresh},
		}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Get(ctx, []byte("collected")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old delta merged: %v", err)
	}
	if v, err := n.Get(ctx, []byte("written")); err != nil || string(v) != "new" {
		t.Fatalf("fresh delta: %q, %v", v, err)
	}
}

// A mesh of one stopped for longer than the grace serves its old values
// again once it has run DeadAfter without hearing another member.
func TestMeshOfOneServesItsOldValuesAfterALongStop(t *testing.T) {
	ctx := context.Background()
	clk := &testClock{}
	again := restartable(t, func(c *Config) {
		c.Now, c.TombstoneGrace, c.HeartbeatInterval = clk.Now, time.Hour, 50*time.Millisecond
	})
	n := startNode(t, again())
	if err := n.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	clk.advance(2 * time.Hour)
	n = startNode(t, again())
	waitFor(t, 10*time.Second, "the old value served again", func() error {
		if _, err := n.CollectTombstones(ctx); err != nil {
			return err
		}
		_, err := n.Get(ctx, []byte("k"))
		return err
	})
}

// A write to a quarantined key that lands in the batch that ends the
// partition's quarantine is kept, not dropped with the old states.
func TestWriteInTheBatchThatEndsAQuarantineIsKept(t *testing.T) {
	ctx := context.Background()
	clk := &testClock{}
	again := restartable(t, func(c *Config) { c.Now, c.TombstoneGrace = clk.Now, time.Hour })
	n := startNode(t, again())
	k := []byte("k")
	if err := n.Put(ctx, k, []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	clk.advance(2 * time.Hour)
	n = startNode(t, again())
	if !n.quarantined(k) {
		t.Fatal("an old value of a store with no session record is not quarantined")
	}
	put := localOp{key: k, kind: crdt.KindLWW, apply: func(s crdt.State, ts crdt.Timestamp) crdt.State {
		return s.(*crdt.LWW).Set([]byte("v2"), ts)
	}}
	err := n.do(ctx, func(tx *txn) error {
		cur, err := tx.get(k) // what a Put stages...
		if err != nil {
			return err
		}
		next, delta, stamp, err := n.applyOp(put, cur)
		if err != nil {
			return err
		}
		tx.stage(k, next, delta, stamp)
		tx.endStale(partitionOf(k, n.cfg.Partitions), true) // ...and a session with a fresh holder, one batch
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := n.Get(ctx, k); err != nil || string(v) != "v2" {
		t.Fatalf("acknowledged write: %q, %v", v, err)
	}
}

// A hint older than the grace handed off for a key the holder lacks is
// not stored: the key may have been deleted and collected since.
func TestHandoffOlderThanTheGraceIsNotMergedIntoAnAbsentKey(t *testing.T) {
	ctx := context.Background()
	clk := &testClock{}
	n := startNode(t, func() Config { c := testConfig(); c.Now, c.TombstoneGrace = clk.Now, time.Hour; return c }())
	var old crdt.LWW
	old.Set([]byte("hinted long ago"), crdt.Timestamp{Wall: clk.Now().Add(-2 * time.Hour).UnixNano(), Node: crdt.NodeIDFromBytes([]byte("peer"))})
	if err := n.Put(ctx, []byte("present"), []byte("older value")); err != nil {
		t.Fatal(err)
	}
	err := n.do(ctx, func(tx *txn) error {
		if err := tx.mergeHandedOff([]byte("collected"), &old); err != nil {
			return err
		}
		return tx.mergeHandedOff([]byte("present"), &old)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Get(ctx, []byte("collected")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old hint stored for an absent key: %v", err)
	}
	if v, err := n.Get(ctx, []byte("present")); err != nil || string(v) != "older value" {
		t.Fatalf("present key: %q, %v", v, err)
	}
}
