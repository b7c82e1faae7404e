package simulations

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
)

func ts(wall int64) crdt.Timestamp { return crdt.Timestamp{Wall: wall, Node: 1} }

func put(seq, node int, key, val string, stamp crdt.Timestamp, start, end time.Duration) Record {
	return Record{
		Op:      Op{Seq: seq, Node: node, Kind: OpPut, Key: key, Value: val},
		Outcome: Acked, Start: start, End: end,
		Stamp: stamp, StampOK: true, StampExact: true,
	}
}

func lww(val string, stamp crdt.Timestamp) crdt.State {
	r := &crdt.LWW{}
	r.Set([]byte(val), stamp)
	return r
}

func TestCheckRegister(t *testing.T) {
	h := []Record{
		put(0, 0, "r/1", "a", ts(10), 0, 1),
		put(1, 1, "r/1", "b", ts(20), 2, 3),
	}
	tests := []struct {
		name        string
		final       crdt.State
		lost, fails int
	}{
		{"newest write wins", lww("b", ts(20)), 0, 0},
		{"older write survives: the newer is lost", lww("a", ts(10)), 1, 0},
		{"key gone: both lost", nil, 2, 0},
		{"value nobody wrote", lww("zz", ts(30)), 0, 1},
		{"right value, wrong stamp", lww("b", ts(25)), 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			final := map[string]crdt.State{}
			if tc.final != nil {
				final["r/1"] = tc.final
			}
			rep := Check(h, final)
			if rep.Lost != tc.lost || rep.Errors != tc.fails {
				t.Fatalf("lost %d errors %d, want %d and %d: %v", rep.Lost, rep.Errors, tc.lost, tc.fails, rep.Violations)
			}
		})
	}
}

func TestCheckRegisterUpperBoundStamp(t *testing.T) {
	// A write superseded before its ack was read back carries the newer
	// state's stamp as an upper bound; a final state at that bound is fine.
	h := []Record{
		{Op: Op{Seq: 0, Kind: OpPut, Key: "r/1", Value: "a"}, Outcome: Acked, Stamp: ts(20), StampOK: true},
		put(1, 1, "r/1", "b", ts(20), 0, 1),
	}
	if rep := Check(h, map[string]crdt.State{"r/1": lww("b", ts(20))}); !rep.OK() {
		t.Fatal(rep.Violations)
	}
	// A missing probe fails loudly.
	h[0].StampOK = false
	if rep := Check(h, map[string]crdt.State{"r/1": lww("b", ts(20))}); rep.OK() || !strings.Contains(strings.Join(rep.Violations, ";"), "probe") {
		t.Fatalf("missing stamp not reported: %+v", rep)
	}
}

func TestCheckDelete(t *testing.T) {
	del := Record{Op: Op{Seq: 1, Kind: OpDelete, Key: "r/1"}, Outcome: Acked, Stamp: ts(20), StampOK: true}
	h := []Record{put(0, 0, "r/1", "a", ts(10), 0, 1), del}
	tomb := &crdt.LWW{}
	tomb.Delete(ts(20))
	if rep := Check(h, map[string]crdt.State{"r/1": tomb}); !rep.OK() {
		t.Fatal(rep.Violations)
	}
	if rep := Check(h, map[string]crdt.State{"r/1": lww("a", ts(10))}); rep.Lost != 1 {
		t.Fatalf("resurrected value not reported as a lost delete: %+v", rep)
	}
}

func incr(seq int, key string, d int64, out Outcome) Record {
	return Record{Op: Op{Seq: seq, Kind: OpIncr, Key: key, Delta: d}, Outcome: out}
}

func counter(v int64) crdt.State {
	c := &crdt.Counter{}
	c.Add(7, v)
	return c
}

func TestCheckCounter(t *testing.T) {
	h := []Record{incr(0, "c/1", 5, Acked), incr(1, "c/1", -2, Acked), incr(2, "c/1", 4, Indeterminate)}
	for _, tc := range []struct {
		got         int64
		lost, fails int
	}{{3, 0, 0}, {7, 0, 0}, {2, 1, 0}, {8, 0, 1}} {
		rep := Check(h, map[string]crdt.State{"c/1": counter(tc.got)})
		if rep.Lost != tc.lost || rep.Errors != tc.fails {
			t.Errorf("counter %d: lost %d errors %d, want %d and %d", tc.got, rep.Lost, rep.Errors, tc.lost, tc.fails)
		}
	}
}

func setOp(seq, node int, kind OpKind, member string, start, end time.Duration) Record {
	return Record{Op: Op{Seq: seq, Node: node, Kind: kind, Key: "s/1", Value: member}, Outcome: Acked, Start: start, End: end}
}

func set(members ...string) crdt.State {
	s := &crdt.ORSet{}
	for _, m := range members {
		s.Add(1, []byte(m))
	}
	return s
}

func TestCheckSetAddWins(t *testing.T) {
	h := []Record{
		setOp(0, 0, OpSAdd, "kept", 0, 1),
		setOp(1, 0, OpSAdd, "removed", 0, 1),
		setOp(2, 0, OpSRem, "removed", 2, 3), // same node, after the add: certainly covers it
		setOp(3, 1, OpSAdd, "readded", 0, 1),
		setOp(4, 0, OpSRem, "readded", 2, 3),
		setOp(5, 2, OpSAdd, "readded", 4, 5), // began after every remove returned: must win
		setOp(6, 1, OpSAdd, "racy", 0, 1),
		setOp(7, 2, OpSRem, "racy", 2, 3), // another node: may or may not have seen the add
	}
	rep := Check(h, map[string]crdt.State{"s/1": set("kept", "readded", "racy")})
	if !rep.OK() || rep.Unchecked != 1 {
		t.Fatalf("want OK with 1 unchecked: %+v", rep)
	}
	rep = Check(h, map[string]crdt.State{"s/1": set("readded")})
	if rep.Lost != 1 {
		t.Fatalf("lost member not reported: %+v", rep)
	}
	rep = Check(h, map[string]crdt.State{"s/1": set("kept", "readded", "removed", "ghost")})
	if rep.Errors != 2 {
		t.Fatalf("resurrected and phantom members not reported: %+v", rep)
	}
}

func TestCheckUnwrittenKey(t *testing.T) {
	if rep := Check(nil, map[string]crdt.State{"x": counter(1)}); rep.Errors != 1 {
		t.Fatalf("phantom key not reported: %+v", rep)
	}
}

func TestCheckRegisterStampWindow(t *testing.T) {
	// A client over HTTP knows only that each write got a stamp between the
	// wall times its call began and returned.
	window := func(r Record, lo, hi int64) Record {
		r.Stamp, r.StampMax, r.StampExact = crdt.Timestamp{Wall: lo}, crdt.Timestamp{Wall: hi, Logical: ^uint32(0), Node: ^crdt.NodeID(0)}, false
		return r
	}
	h := []Record{
		window(put(0, 0, "r/1", "a", crdt.Timestamp{}, 0, 1), 100, 110),
		window(put(1, 1, "r/1", "b", crdt.Timestamp{}, 2, 3), 120, 130),
		window(Record{Op: Op{Seq: 2, Node: 2, Kind: OpDelete, Key: "r/2"}, Outcome: Acked, StampOK: true}, 140, 150),
	}
	tests := []struct {
		name        string
		final       map[string]crdt.State
		lost, fails int
	}{
		{"newest write wins", map[string]crdt.State{"r/1": lww("b", ts(125))}, 1, 0}, // r/2's delete lost: key absent
		{"older write survives: the newer is lost", map[string]crdt.State{"r/1": lww("a", ts(105))}, 2, 0},
		{"stamp outside the call", map[string]crdt.State{"r/1": lww("b", ts(135))}, 1, 1},
		{"tombstone in the delete's window", map[string]crdt.State{"r/1": lww("b", ts(125)), "r/2": tomb(ts(145))}, 0, 0},
		{"tombstone matches no delete", map[string]crdt.State{"r/1": lww("b", ts(125)), "r/2": tomb(ts(155))}, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := Check(h, tc.final)
			if rep.Lost != tc.lost || rep.Errors != tc.fails {
				t.Fatalf("lost %d errors %d, want %d and %d: %v", rep.Lost, rep.Errors, tc.lost, tc.fails, rep.Violations)
			}
		})
	}
}

func tomb(stamp crdt.Timestamp) crdt.State {
	r := &crdt.LWW{}
	r.Delete(stamp)
	return r
}

func TestCheckCollectedDeletes(t *testing.T) {
	del := func(seq int, key string, stamp crdt.Timestamp, end time.Duration) Record {
		return Record{Op: Op{Seq: seq, Kind: OpDelete, Key: key}, Outcome: Acked, End: end, Stamp: stamp, StampOK: true, StampExact: true}
	}
	h := []Record{
		put(0, 0, "r/gone", "a", ts(10), 0, 1), del(1, "r/gone", ts(20), 2),
		put(2, 0, "r/late", "b", ts(10), 0, 1), del(3, "r/late", ts(20), 50),
		put(4, 0, "r/again", "c", ts(10), 0, 1), del(5, "r/again", ts(20), 2), put(6, 0, "r/again", "d", ts(30), 3, 4),
		put(7, 0, "r/back", "e", ts(10), 0, 1), del(8, "r/back", ts(20), 2),
	}
	final := map[string]crdt.State{"r/back": lww("e", ts(10))}
	rep := CheckCollected(h, final, 10)
	// r/gone: collected, fine. r/late: deleted after the cutoff, so its
	// tombstone must still be there. r/again: the write after the delete
	// is lost. r/back: the collected delete came back. An absent key
	// counts each of its acknowledged writes: 2 + 3 + 1.
	if rep.Lost != 6 || rep.Errors != 0 {
		t.Fatalf("lost %d errors %d, want 6 and 0: %v", rep.Lost, rep.Errors, rep.Violations)
	}
	if !slices.ContainsFunc(rep.Violations, func(v string) bool { return strings.Contains(v, "r/back: resurrected") }) {
		t.Fatalf("resurrection not named: %v", rep.Violations)
	}
	if rep := Check(h[:2], nil); rep.Lost != 2 {
		t.Fatalf("without collection an absent deleted key is lost: %+v", rep)
	}
}
