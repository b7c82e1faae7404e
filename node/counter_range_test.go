package node

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

func TestIncrOutOfRangeIsRefusedAndWritesNothing(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, testConfig())
	key := []byte("hits")
	if _, err := n.Incr(ctx, key, math.MaxInt64-2); err != nil {
		t.Fatal(err)
	}
	before := rootsOf(t, n)
	total, err := n.Incr(ctx, key, 5)
	if !errors.Is(err, ErrCounterRange) {
		t.Fatalf("Incr past MaxInt64 = %d, %v; want ErrCounterRange", total, err)
	}
	if v, err := n.Counter(ctx, key); err != nil || v != math.MaxInt64-2 {
		t.Fatalf("after the refused Incr the counter is %d, %v; want %d", v, err, int64(math.MaxInt64-2))
	}
	if after := rootsOf(t, n); after != before {
		t.Fatal("a refused Incr changed the store")
	}
	if v, err := n.Incr(ctx, key, -3); err != nil || v != math.MaxInt64-5 {
		t.Fatalf("a decrement after the refusal: %d, %v", v, err)
	}
}

// Two nodes each within range, their merge beyond it: reading says so.
func TestMergedCounterOutOfRangeIsReported(t *testing.T) {
	ctx := context.Background()
	nodes := startNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	key := []byte("hits")
	for _, n := range nodes {
		if _, err := n.Incr(ctx, key, math.MaxInt64); err != nil {
			t.Fatal(err)
		}
	}
	link(t, a, b)
	waitFor(t, 20*time.Second, "both nodes see the merged counter", func() error {
		for _, n := range nodes {
			if _, err := n.Counter(ctx, key); !errors.Is(err, ErrCounterRange) {
				return errors.New("not merged yet")
			}
		}
		return nil
	})
	if _, err := a.Incr(ctx, key, 1); !errors.Is(err, ErrCounterRange) {
		t.Fatalf("Incr on an out-of-range counter: %v, want ErrCounterRange", err)
	}
	if v, err := a.Incr(ctx, key, math.MinInt64); err != nil || v != math.MaxInt64-1 {
		t.Fatalf("a decrement back into range: %d, %v; want %d", v, err, int64(math.MaxInt64-1))
	}
}
