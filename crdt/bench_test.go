package crdt

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Benchmarks use a fixed-seed local PRNG so runs are comparable.
const benchSeed = 42

// benchStates builds two replicas of a kind with n elements each that
// overlap in part, and a delta from one local op on a third replica that
// has seen the first.
func benchStates(k Kind, n int) (a, b, delta State) {
	rng := rand.New(rand.NewPCG(benchSeed, 0))
	const na, nb, nc = NodeID(1), NodeID(2), NodeID(3)
	switch k {
	case KindLWW:
		x, y := &LWW{}, &LWW{}
		x.Set([]byte("value-a"), Timestamp{Wall: 100, Node: na})
		y.Set([]byte("value-b"), Timestamp{Wall: 99, Node: nb})
		return x, y, (&LWW{}).Set([]byte("value-c"), Timestamp{Wall: 101, Node: nc})
	case KindMVRegister:
		x, y := &MVRegister{}, &MVRegister{}
		for range n {
			x.Write(na, []byte("value-a"))
			y.Write(nb, []byte("value-b"))
		}
		x.Merge(y.Clone().(*MVRegister))
		z := x.Clone().(*MVRegister)
		return x, y, z.Write(nc, []byte("value-c"))
	case KindCounter:
		x, y := &Counter{}, &Counter{}
		for i := range n {
			x.Add(NodeID(i), rng.Int64N(100))
			y.Add(NodeID(i), rng.Int64N(100))
		}
		return x, y, x.Clone().(*Counter).Add(NodeID(n/2), 1)
	default:
		x, y := &ORSet{}, &ORSet{}
		for range n {
			x.Add(na, fmt.Appendf(nil, "member-%d", rng.IntN(2*n)))
			y.Add(nb, fmt.Appendf(nil, "member-%d", rng.IntN(2*n)))
		}
		x.Merge(y)
		y.Remove([]byte("member-1"))
		return x, y, x.Clone().(*ORSet).Add(nc, []byte("member-new"))
	}
}

var benchKinds = []struct {
	name string
	kind Kind
}{{"LWW", KindLWW}, {"MVRegister", KindMVRegister}, {"Counter", KindCounter}, {"ORSet", KindSet}}

const benchSize = 1000 // elements per set/counter, writes per register

// benchMerge merges a full state (or a delta) into a replica that already
// holds it: the steady state of anti-entropy and of duplicate gossip.
func benchMerge(b *testing.B, k Kind, useDelta bool) {
	x, y, d := benchStates(k, benchSize)
	src := y
	if useDelta {
		src = d
	}
	dst := x.Clone()
	if err := Merge(dst, src); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = Merge(dst, src)
	}
}

func BenchmarkMergeLWW(b *testing.B)        { benchMerge(b, KindLWW, false) }
func BenchmarkMergeMVRegister(b *testing.B) { benchMerge(b, KindMVRegister, false) }
func BenchmarkMergeCounter(b *testing.B)    { benchMerge(b, KindCounter, false) }
func BenchmarkMergeORSet(b *testing.B)      { benchMerge(b, KindSet, false) }

func BenchmarkDeltaMergeLWW(b *testing.B)        { benchMerge(b, KindLWW, true) }
func BenchmarkDeltaMergeMVRegister(b *testing.B) { benchMerge(b, KindMVRegister, true) }
func BenchmarkDeltaMergeCounter(b *testing.B)    { benchMerge(b, KindCounter, true) }
func BenchmarkDeltaMergeORSet(b *testing.B)      { benchMerge(b, KindSet, true) }

// BenchmarkLWWMergeFresh merges a winning write into a register that does
// not have it yet (the state changes every iteration).
func BenchmarkLWWMergeFresh(b *testing.B) {
	var r LWW
	ds := make([]LWW, 1024)
	for i := range ds {
		ds[i].Set([]byte("v"), Timestamp{Wall: int64(i + 1), Node: 1})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%len(ds) == 0 {
			r = LWW{}
		}
		r.Merge(&ds[i%len(ds)])
		i++
	}
}

func benchEncode(b *testing.B, k Kind) {
	x, _, _ := benchStates(k, benchSize)
	buf := AppendEncode(nil, x)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		buf = AppendEncode(buf[:0], x)
	}
}

func BenchmarkEncodeLWW(b *testing.B)        { benchEncode(b, KindLWW) }
func BenchmarkEncodeMVRegister(b *testing.B) { benchEncode(b, KindMVRegister) }
func BenchmarkEncodeCounter(b *testing.B)    { benchEncode(b, KindCounter) }
func BenchmarkEncodeORSet(b *testing.B)      { benchEncode(b, KindSet) }

func benchDecode(b *testing.B, k Kind) {
	x, _, _ := benchStates(k, benchSize)
	enc := Encode(x)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeLWW(b *testing.B)        { benchDecode(b, KindLWW) }
func BenchmarkDecodeMVRegister(b *testing.B) { benchDecode(b, KindMVRegister) }
func BenchmarkDecodeCounter(b *testing.B)    { benchDecode(b, KindCounter) }
func BenchmarkDecodeORSet(b *testing.B)      { benchDecode(b, KindSet) }

func benchDigest(b *testing.B, k Kind) {
	x, _, _ := benchStates(k, benchSize)
	b.SetBytes(int64(len(Encode(x))))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = DigestOfState(x)
	}
}

func BenchmarkDigestLWW(b *testing.B)        { benchDigest(b, KindLWW) }
func BenchmarkDigestMVRegister(b *testing.B) { benchDigest(b, KindMVRegister) }
func BenchmarkDigestCounter(b *testing.B)    { benchDigest(b, KindCounter) }
func BenchmarkDigestORSet(b *testing.B)      { benchDigest(b, KindSet) }

// BenchmarkORSetAddMerge is the write path of a set: one replica adds a
// member (cycling through the member pool, 1 in 4 a random re-add), another
// merges the delta. At 64Ki members the maps outgrow the CPU caches and
// every map access is a cache miss; that size is also about the default
// 1 MiB value limit.
func BenchmarkORSetAddMerge(b *testing.B) {
	for _, size := range []int{1 << 10, 1 << 16} {
		b.Run(fmt.Sprintf("members=%d", size), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(benchSeed, 1))
			var x, y ORSet
			members := make([][]byte, size)
			for i := range members {
				members[i] = fmt.Appendf(nil, "member-%d", i)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m := members[i%size]
				if rng.IntN(4) == 0 {
					m = members[rng.IntN(size)]
				}
				y.Merge(x.Add(1, m))
				i++
			}
			if x.Len() != y.Len() {
				b.Fatalf("replicas diverged: %d vs %d", x.Len(), y.Len())
			}
		})
	}
}
