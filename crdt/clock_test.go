package crdt

import (
	"errors"
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestClockNow(t *testing.T) {
	const node = NodeID(7)
	tests := []struct {
		name  string
		start Timestamp // clock's last before the call (Node ignored)
		phys  int64
		want  Timestamp
	}{
		{"physical ahead", Timestamp{Wall: 100, Logical: 3}, 200, Timestamp{200, 0, node}},
		{"physical equal", Timestamp{Wall: 100, Logical: 3}, 100, Timestamp{100, 4, node}},
		{"physical backwards", Timestamp{Wall: 100, Logical: 3}, 50, Timestamp{100, 4, node}},
		{"logical overflow bumps wall", Timestamp{Wall: 100, Logical: math.MaxUint32}, 100, Timestamp{101, 0, node}},
		{"logical overflow, physical behind", Timestamp{Wall: 100, Logical: math.MaxUint32}, 0, Timestamp{101, 0, node}},
		{"saturates at the end of time", Timestamp{Wall: math.MaxInt64, Logical: math.MaxUint32}, 0, Timestamp{math.MaxInt64, math.MaxUint32, node}},
		{"negative physical", Timestamp{}, -10, Timestamp{0, 1, node}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClock(node, 0)
			c.last.Wall, c.last.Logical = tc.start.Wall, tc.start.Logical
			if got := c.Now(tc.phys); got != tc.want {
				t.Fatalf("Now(%d) = %v, want %v", tc.phys, got, tc.want)
			}
			if c.Last() != tc.want {
				t.Fatalf("Last() = %v, want %v", c.Last(), tc.want)
			}
		})
	}
}

func TestClockObserve(t *testing.T) {
	const (
		node  = NodeID(7)
		drift = 5 * time.Second
		phys  = int64(1_000_000_000_000)
	)
	tests := []struct {
		name     string
		maxDrift time.Duration
		remote   Timestamp
		wantErr  error
		wantNext Timestamp // the Now(phys) after Observe
	}{
		{"remote behind", drift, Timestamp{phys - 10, 9, 1}, nil, Timestamp{phys, 0, node}},
		{"remote equal wall, higher logical", drift, Timestamp{phys, 9, 1}, nil, Timestamp{phys, 10, node}},
		{"drift exactly at limit accepted", drift, Timestamp{phys + int64(drift), 2, 1}, nil, Timestamp{phys + int64(drift), 3, node}},
		{"drift one past limit rejected", drift, Timestamp{phys + int64(drift) + 1, 0, 1}, ErrClockDrift, Timestamp{phys, 0, node}},
		{"far future rejected without overflow", drift, Timestamp{math.MaxInt64, 0, 1}, ErrClockDrift, Timestamp{phys, 0, node}},
		{"no limit accepts anything", 0, Timestamp{phys + int64(time.Hour), 0, 1}, nil, Timestamp{phys + int64(time.Hour), 1, node}},
		{"remote logical at max", drift, Timestamp{phys, math.MaxUint32, 1}, nil, Timestamp{phys + 1, 0, node}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClock(node, tc.maxDrift)
			before := c.Last()
			err := c.Observe(tc.remote, phys)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("Observe err = %v, want %v", err, tc.wantErr)
			}
			if err != nil && c.Last() != before {
				t.Fatalf("rejected Observe advanced the clock to %v", c.Last())
			}
			next := c.Now(phys)
			if next != tc.wantNext {
				t.Fatalf("Now after Observe = %v, want %v", next, tc.wantNext)
			}
			if err == nil && next.Compare(tc.remote) <= 0 {
				t.Fatalf("Now %v not after observed %v", next, tc.remote)
			}
		})
	}
}

func TestTimestampCompare(t *testing.T) {
	tests := []struct {
		a, b Timestamp
		want int
	}{
		{Timestamp{1, 0, 9}, Timestamp{2, 0, 1}, -1},
		{Timestamp{2, 0, 1}, Timestamp{2, 1, 0}, -1},
		{Timestamp{2, 1, 5}, Timestamp{2, 1, 5}, 0},
		{Timestamp{2, 1, 5}, Timestamp{2, 1, 4}, 1}, // equal clocks: tie-break by node
		{Timestamp{-1, 0, 0}, Timestamp{}, -1},
	}
	for _, tc := range tests {
		if got := tc.a.Compare(tc.b); got != tc.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := tc.b.Compare(tc.a); got != -tc.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
	if !(Timestamp{}).IsZero() || (Timestamp{Node: 1}).IsZero() {
		t.Error("IsZero wrong")
	}
}

func TestNodeIDFromBytes(t *testing.T) {
	// Pinned: the ID must never change across versions or platforms.
	if got, want := NodeIDFromBytes([]byte("peer")), NodeID(0x2ffc1d06387ef8bb); got != want {
		t.Errorf("NodeIDFromBytes(peer) = %#x, want %#x", uint64(got), uint64(want))
	}
	if NodeIDFromBytes([]byte("a")) == NodeIDFromBytes([]byte("b")) {
		t.Error("collision")
	}
}

// TestPropClockMonotonic: whatever physical times and remote timestamps
// arrive, every Now is greater than all earlier Nows and accepted remotes.
func TestPropClockMonotonic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		drift := time.Duration(rapid.Int64Range(0, 100).Draw(t, "drift"))
		c := NewClock(1, drift)
		var high Timestamp
		for range rapid.IntRange(1, 50).Draw(t, "steps") {
			phys := rapid.Int64Range(-50, 200).Draw(t, "phys")
			if rapid.Bool().Draw(t, "observe") {
				r := Timestamp{
					Wall:    rapid.Int64Range(-50, 400).Draw(t, "rwall"),
					Logical: rapid.SampledFrom([]uint32{0, 1, 7, math.MaxUint32 - 1, math.MaxUint32}).Draw(t, "rlogical"),
					Node:    NodeID(rapid.Uint64Range(0, 3).Draw(t, "rnode")),
				}
				err := c.Observe(r, phys)
				tooFar := drift > 0 && r.Wall-phys > int64(drift)
				if tooFar != errors.Is(err, ErrClockDrift) {
					t.Fatalf("Observe(%v, %d) err=%v, tooFar=%v", r, phys, err, tooFar)
				}
				if err == nil && r.Compare(high) > 0 {
					high = r
				}
				continue
			}
			now := c.Now(phys)
			if now.Compare(high) <= 0 {
				t.Fatalf("Now(%d) = %v, not after %v", phys, now, high)
			}
			if now.Wall < phys {
				t.Fatalf("Now(%d) = %v, behind physical", phys, now)
			}
			high = now
		}
	})
}
