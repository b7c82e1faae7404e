package crdt_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
)

func Example() {
	a, b := crdt.NodeIDFromBytes([]byte("peer-a")), crdt.NodeIDFromBytes([]byte("peer-b"))
	clk := crdt.NewClock(a, 5*time.Second)
	now := int64(1_700_000_000_000_000_000) // from the node's injectable clock

	// Node a writes; the delta is what it gossips.
	var ra crdt.LWW
	delta := ra.Set([]byte("on"), clk.Now(now))
	wire := crdt.Encode(delta)

	// Node b decodes and merges it.
	got, err := crdt.Decode(wire)
	if err != nil {
		fmt.Println(err)
		return
	}
	rb, _ := crdt.New(crdt.KindLWW)
	if err := crdt.Merge(rb, got); err != nil {
		fmt.Println(err)
		return
	}
	v, ok := rb.(*crdt.LWW).Value()
	fmt.Printf("%s %v %v\n", v, ok, crdt.DigestOfState(rb) == crdt.DigestOfState(&ra))

	// A remote clock far in the future is refused.
	err = clk.Observe(crdt.Timestamp{Wall: now + int64(time.Hour), Node: b}, now)
	fmt.Println(errors.Is(err, crdt.ErrClockDrift))
	// Output:
	// on true true
	// true
}

func ExampleORSet() {
	var a, b crdt.ORSet
	b.Merge(a.Add(1, []byte("x")))
	rm := a.Remove([]byte("x"))  // a removes the x it has seen...
	add := b.Add(2, []byte("x")) // ...while b adds x again concurrently
	a.Merge(add)
	b.Merge(rm)
	fmt.Println(a.Contains([]byte("x")), b.Contains([]byte("x"))) // add wins
	// Output: true true
}

func ExampleMVRegister() {
	var a, b crdt.MVRegister
	a.Write(1, []byte("red"))
	b.Write(2, []byte("blue"))
	a.Merge(&b)
	fmt.Printf("%q\n", a.Values()) // concurrent writes are siblings
	b.Merge(a.Write(1, []byte("green")))
	fmt.Printf("%q\n", b.Values()) // a write that saw both supersedes them
	// Output:
	// ["blue" "red"]
	// ["green"]
}

func ExampleCounter() {
	var a, b crdt.Counter
	a.Add(1, 5)
	b.Merge(a.Add(1, -2))
	b.Add(2, 10)
	a.Merge(&b)
	fmt.Println(a.Value(), b.Value())
	// Output: 13 13
}

func ExampleCollect() {
	var r crdt.LWW
	r.Delete(crdt.Timestamp{Wall: 0, Logical: 1, Node: 1})
	_, drop := crdt.Collect(&r, int64(2*time.Hour), time.Hour)
	fmt.Println(drop)
	// Output: true
}

func ExampleJoin() {
	clk := crdt.NewClock(1, 0)
	reg := &crdt.LWW{}
	reg.Set([]byte("v"), clk.Now(10))

	// A counter for the same key, from a node that created one there: at
	// generation zero its kind outranks the register on every replica.
	var counter crdt.Counter
	counter.Add(2, 1)
	s := crdt.Join(reg, &counter)
	fmt.Println(s.Kind())

	// A register write over it starts a new generation, stamped after the
	// one it replaces, and wins back whole.
	_ = clk.Observe(s.Generation(), 20)
	gen := clk.Now(20)
	put, _ := crdt.NewAt(crdt.KindLWW, gen)
	put.(*crdt.LWW).Set([]byte("w"), gen)
	s = crdt.Join(s, put)
	v, _ := s.(*crdt.LWW).Value()
	fmt.Println(s.Kind(), string(v))
	// Output:
	// counter
	// lww w
}
