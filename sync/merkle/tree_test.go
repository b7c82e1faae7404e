package merkle_test

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/sync/merkle"
)

func digest(s string) crdt.Digest { return crdt.DigestOf([]byte(s)) }

func seq(m map[string]crdt.Digest) func(func([]byte, crdt.Digest) bool) {
	return func(yield func([]byte, crdt.Digest) bool) {
		for k, d := range m {
			if !yield([]byte(k), d) {
				return
			}
		}
	}
}

// check verifies the tree's invariants against a model map.
func check(t interface {
	Helper()
	Fatalf(string, ...any)
}, tr *merkle.Tree, model map[string]crdt.Digest) {
	t.Helper()
	if tr.Len() != len(model) {
		t.Fatalf("Len = %d, want %d", tr.Len(), len(model))
	}
	var want merkle.Sum
	for k, d := range model {
		want = want.Add(merkle.EntrySum(merkle.KeyHash([]byte(k)), d))
		if got, ok := tr.Get([]byte(k)); !ok || got != d {
			t.Fatalf("Get(%q) = %v, %v; want %v", k, got, ok, d)
		}
	}
	if tr.Root() != want.Hash() {
		t.Fatalf("Root mismatch")
	}
	// Children at every depth up to 6 sum to their parent, and counts add up.
	for depth := uint(0); depth < 6; depth++ {
		for p := uint64(0); p < 1<<depth; p++ {
			s, n := tr.Node(depth, p)
			l, ln := tr.Node(depth+1, p<<1)
			r, rn := tr.Node(depth+1, p<<1|1)
			if s != l.Add(r) || n != ln+rn {
				t.Fatalf("node (%d,%x) is not the sum of its children", depth, p)
			}
			c := 0
			for range tr.Entries(depth, p) {
				c++
			}
			if c != n {
				t.Fatalf("Entries(%d,%x) yields %d, count %d", depth, p, c, n)
			}
		}
	}
}

func TestEmpty(t *testing.T) {
	tr := merkle.New()
	if tr.Root() != (merkle.Hash{}) || tr.Len() != 0 {
		t.Fatal("empty tree has non-zero root or length")
	}
	if _, ok := tr.Get([]byte("x")); ok {
		t.Fatal("Get on empty tree found a key")
	}
	tr.Delete([]byte("x"))
	check(t, tr, nil)
}

func TestPutGetDelete(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	tr := merkle.New()
	model := map[string]crdt.Digest{}
	for i := range 5000 {
		k := fmt.Sprintf("key-%d", r.IntN(2000))
		if r.IntN(4) == 0 {
			tr.Delete([]byte(k))
			delete(model, k)
		} else {
			d := digest(fmt.Sprint(i))
			tr.Put([]byte(k), d)
			model[k] = d
		}
		if i%500 == 0 {
			check(t, tr, model)
		}
	}
	check(t, tr, model)
	check(t, merkle.Build(seq(model)), model)
	for k := range model {
		tr.Delete([]byte(k))
	}
	check(t, tr, nil)
}

func TestBuildDuplicatesLastWins(t *testing.T) {
	tr := merkle.Build(func(yield func([]byte, crdt.Digest) bool) {
		_ = yield([]byte("a"), digest("1")) && yield([]byte("a"), digest("2"))
	})
	check(t, tr, map[string]crdt.Digest{"a": digest("2")})
}

func TestKeyHashStable(t *testing.T) {
	// KeyHash is part of the wire protocol: it must never change.
	got := merkle.KeyHash([]byte("gossipmesh"))
	if got != merkle.KeyHash([]byte("gossipmesh")) || got == merkle.KeyHash([]byte("gossipmesi")) {
		t.Fatal("KeyHash unstable or degenerate")
	}
	t.Logf("KeyHash(gossipmesh) = %#x", got)
}

func TestRapidIncrementalEqualsBulk(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		keys := rapid.SliceOfN(rapid.StringN(0, 12, -1), 0, 300).Draw(t, "keys")
		model := map[string]crdt.Digest{}
		tr := merkle.New()
		for i, k := range keys {
			d := digest(fmt.Sprint(i % 7))
			tr.Put([]byte(k), d)
			model[k] = d
		}
		check(t, tr, model)
		bulk := merkle.Build(seq(model))
		if bulk.Root() != tr.Root() {
			t.Fatalf("bulk root != incremental root")
		}
	})
}

func TestRapidDeleteRestoresRoot(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		keys := rapid.SliceOfNDistinct(rapid.StringN(1, 8, -1), 0, 200, rapid.ID).Draw(t, "keys")
		tr := merkle.New()
		for _, k := range keys {
			tr.Put([]byte(k), digest(k))
		}
		before := tr.Root()
		extra := rapid.SliceOfNDistinct(rapid.StringN(9, 12, -1), 1, 100, rapid.ID).Draw(t, "extra")
		for _, k := range extra {
			tr.Put([]byte(k), digest(k))
		}
		if tr.Root() == before {
			t.Fatalf("root unchanged after inserts")
		}
		for _, k := range rapid.Permutation(extra).Draw(t, "order") {
			tr.Delete([]byte(k))
		}
		if tr.Root() != before || tr.Len() != len(keys) {
			t.Fatalf("delete did not restore the previous root")
		}
	})
}

func TestRapidOrderIndependent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := rapid.MapOfN(rapid.StringN(0, 10, -1), rapid.StringN(0, 4, -1), 0, 300).Draw(t, "m")
		keys := rapid.Permutation(slicesOf(maps.Keys(m))).Draw(t, "perm")
		a, b := merkle.New(), merkle.New()
		for k, v := range m {
			a.Put([]byte(k), digest(v))
		}
		for _, k := range keys {
			b.Put([]byte(k), digest("junk"))
		}
		for _, k := range keys {
			b.Put([]byte(k), digest(m[k]))
		}
		if a.Root() != b.Root() {
			t.Fatalf("roots depend on insertion order")
		}
	})
}

func slicesOf(s func(func(string) bool)) []string {
	var out []string
	for k := range s {
		out = append(out, k)
	}
	return out
}

func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range keys {
		k := make([]byte, 32)
		binary.LittleEndian.PutUint64(k, r.Uint64())
		binary.LittleEndian.PutUint64(k[8:], r.Uint64())
		keys[i] = k
	}
	return keys
}

func BenchmarkBuild1M(b *testing.B) {
	keys := benchKeys(1 << 20)
	var d crdt.Digest
	for b.Loop() {
		merkle.Build(func(yield func([]byte, crdt.Digest) bool) {
			for i, k := range keys {
				d[0] = byte(i)
				if !yield(k, d) {
					return
				}
			}
		})
	}
}

// BenchmarkPut measures incremental updates of existing keys and inserts of
// new ones in a tree of 1 M keys.
func BenchmarkPut(b *testing.B) {
	keys := benchKeys(1 << 20)
	tr := merkle.Build(func(yield func([]byte, crdt.Digest) bool) {
		for _, k := range keys {
			if !yield(k, crdt.Digest{}) {
				return
			}
		}
	})
	b.Run("update", func(b *testing.B) {
		var d crdt.Digest
		i := 0
		for b.Loop() {
			d[0]++
			tr.Put(keys[i&(1<<20-1)], d)
			i++
		}
	})
	b.Run("insert-delete", func(b *testing.B) {
		extra := benchKeys(1 << 16)
		for i := range extra {
			extra[i][31] ^= 0xff
		}
		i := 0
		for b.Loop() {
			k := extra[i&(1<<16-1)]
			if i&(1<<16) == 0 {
				tr.Put(k, crdt.Digest{1})
			} else {
				tr.Delete(k)
			}
			i++
		}
	})
}
