package crdt

import (
	"errors"
	"math"
	"testing"
)

// The report that started it: 9223372036854775805 + 5 printed a negative
// number.
func TestCounterAddPastMaxIsRefused(t *testing.T) {
	var c Counter
	c.Add(1, math.MaxInt64-2)
	if err := c.CheckAdd(1, 5); !errors.Is(err, ErrCounterRange) {
		t.Fatalf("CheckAdd(MaxInt64-2 + 5) = %v, want ErrCounterRange", err)
	}
	if err := c.CheckAdd(1, 2); err != nil {
		t.Fatalf("CheckAdd to exactly MaxInt64: %v", err)
	}
	if err := c.CheckAdd(2, -math.MaxInt64); err != nil {
		t.Fatalf("a decrement back into range: %v", err)
	}
}

func TestCounterSubPastMinIsRefused(t *testing.T) {
	var c Counter
	c.Add(1, math.MinInt64)
	if v, err := c.Sum(); err != nil || v != math.MinInt64 {
		t.Fatalf("Sum at MinInt64 = %d, %v", v, err)
	}
	if err := c.CheckAdd(2, -1); !errors.Is(err, ErrCounterRange) {
		t.Fatalf("CheckAdd below MinInt64 = %v, want ErrCounterRange", err)
	}
}

// Each node's total is in range, their merge is not: Sum says so instead
// of wrapping, and Value clamps.
func TestCounterMergedPastMaxIsReported(t *testing.T) {
	var a, b Counter
	a.Add(1, math.MaxInt64)
	b.Add(2, math.MaxInt64)
	a.Merge(&b)
	v, err := a.Sum()
	if !errors.Is(err, ErrCounterRange) || v != math.MaxInt64 {
		t.Fatalf("Sum of two MaxInt64 totals = %d, %v; want MaxInt64 and ErrCounterRange", v, err)
	}
	if a.Value() != math.MaxInt64 {
		t.Fatalf("Value = %d, want it clamped to MaxInt64", a.Value())
	}
	// Far past 2^64 in total: the 128-bit sum does not wrap either.
	for node := NodeID(3); node < 10; node++ {
		var o Counter
		o.Add(node, math.MaxInt64)
		a.Merge(&o)
	}
	if _, err := a.Sum(); !errors.Is(err, ErrCounterRange) {
		t.Fatalf("Sum of nine MaxInt64 totals: %v, want ErrCounterRange", err)
	}
	// Decrements bring it back exactly.
	for node := NodeID(1); node < 10; node++ {
		a.Add(node, -math.MaxInt64)
	}
	if v, err := a.Sum(); err != nil || v != 0 {
		t.Fatalf("after matching decrements Sum = %d, %v; want 0", v, err)
	}
}

// A node's own total saturating would silently lose part of an increment.
func TestCounterOwnTotalSaturationIsRefused(t *testing.T) {
	var c Counter
	c.Add(1, math.MaxInt64)
	c.Add(1, math.MaxInt64)
	c.Add(2, math.MinInt64)
	c.Add(2, math.MinInt64) // node 2's decrements balance node 1's increments
	if err := c.CheckAdd(1, 2); !errors.Is(err, ErrCounterRange) {
		t.Fatalf("CheckAdd saturating node 1's total: %v, want ErrCounterRange", err)
	}
}
