package crdt

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

var sentinels = []error{ErrTruncated, ErrTooLarge, ErrUnknownKind, ErrUnknownVersion, ErrMalformed}

func checkSentinel(t *testing.T, err error) {
	t.Helper()
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error %v wraps no sentinel", err)
}

// decodeOK decodes b and checks the decoder's contract: no panic, errors
// wrap a sentinel, and accepted input is canonical (re-encodes to itself).
func decodeOK(t *testing.T, b []byte) (State, bool) {
	t.Helper()
	s, err := Decode(b)
	if err != nil {
		checkSentinel(t, err)
		return nil, false
	}
	if enc := Encode(s); !bytes.Equal(enc, b) {
		t.Fatalf("accepted non-canonical input\n in=%x\nout=%x", b, enc)
	}
	checkInvariants(t, s)
	return s, true
}

func FuzzDecode(f *testing.F) {
	for _, b := range seedEncodings() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, ok := decodeOK(t, b)
		if !ok {
			return
		}
		assertEqual(t, "a⊔a", merged(t, s, s), s)
		empty, _ := New(s.Kind())
		assertEqual(t, "∅⊔a", merged(t, empty, s), s)
		assertEqual(t, "∅lww⊔a", joined(t, &LWW{}, s), s)
		if out, drop := Collect(s, 0, 0); drop && !s.Generation().IsZero() {
			t.Fatalf("collected a state of generation %v", out.Generation())
		}
	})
}

// FuzzMerge decodes two states and checks that merge is commutative and
// idempotent even for states no honest history produces: a hostile peer
// must not be able to make replicas diverge forever.
func FuzzMerge(f *testing.F) {
	seeds := seedEncodings()
	for _, a := range seeds {
		for _, b := range seeds {
			if len(a) > 1 && len(b) > 1 && (a[1] == b[1] || a[0] != b[0]) {
				f.Add(a, b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		sa, ok1 := decodeOK(t, a)
		sb, ok2 := decodeOK(t, b)
		if !ok1 || !ok2 {
			return
		}
		jab := joined(t, sa, sb)
		assertEqual(t, "a⊔b vs b⊔a (Join)", jab, joined(t, sb, sa))
		assertEqual(t, "(a⊔b)⊔b (Join)", joined(t, jab, sb), jab)
		assertEqual(t, "(a⊔b)⊔a (Join)", joined(t, jab, sa), jab)
		if sa.Kind() != sb.Kind() {
			if err := Merge(sa.Clone(), sb); !errors.Is(err, ErrKindMismatch) {
				t.Fatalf("merge of kinds %v, %v: %v", sa.Kind(), sb.Kind(), err)
			}
			return
		}
		ab, ba := merged(t, sa, sb), merged(t, sb, sa)
		assertEqual(t, "a⊔b vs b⊔a", ab, ba)
		assertEqual(t, "(a⊔b)⊔b", merged(t, ab, sb), ab)
		assertEqual(t, "(a⊔b)⊔a", merged(t, ab, sa), ab)
		assertEqual(t, "Merge vs Join", ab, jab)
	})
}

// FuzzJoin decodes three states of any kinds and generations and checks
// the laws of the join across them, associativity included.
func FuzzJoin(f *testing.F) {
	seeds := seedEncodings()
	for i, a := range seeds {
		f.Add(a, seeds[(i+1)%len(seeds)], seeds[(i*7+3)%len(seeds)])
	}
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		sa, ok1 := decodeOK(t, a)
		sb, ok2 := decodeOK(t, b)
		sc, ok3 := decodeOK(t, c)
		if !ok1 || !ok2 || !ok3 {
			return
		}
		ab := joined(t, sa, sb)
		assertEqual(t, "a⊔b vs b⊔a", ab, joined(t, sb, sa))
		assertEqual(t, "(a⊔b)⊔c vs a⊔(b⊔c)", joined(t, ab, sc), joined(t, sa, joined(t, sb, sc)))
		assertEqual(t, "(a⊔b)⊔a", joined(t, ab, sa), ab)
	})
}

// seedEncodings returns valid encodings of every kind plus garbage.
func seedEncodings() [][]byte {
	states := sampleStates()
	names := make([]string, 0, len(states))
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	var out [][]byte
	for _, n := range names {
		out = append(out, Encode(states[n]))
	}
	return append(out,
		nil,
		[]byte{EncodingVersion},
		[]byte{0xff, 0xff},
		[]byte{EncodingVersion, byte(KindSet), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		[]byte{EncodingVersion, byte(KindCounter), 0x80, 0x00},
		[]byte{EncodingVersionGen, byte(KindLWW), 0x00},
		[]byte("garbage that is not an encoding"),
	)
}

func isVersion(b byte) bool { return b == EncodingVersion || b == EncodingVersionGen }

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz seed corpora from seedEncodings")

// TestSeedCorpus checks the committed corpus exists, and with
// -update-corpus regenerates it (go test fuzz v1 format).
func TestSeedCorpus(t *testing.T) {
	seeds := seedEncodings()
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if *updateCorpus {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, b := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		mdir := filepath.Join("testdata", "fuzz", "FuzzMerge")
		if err := os.MkdirAll(mdir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, a := range seeds {
			for j, b := range seeds {
				if len(a) > 1 && len(b) > 1 && a[1] == b[1] && isVersion(a[0]) {
					body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n", a, b)
					if err := os.WriteFile(filepath.Join(mdir, fmt.Sprintf("seed%02d-%02d", i, j)), []byte(body), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	if *updateCorpus {
		jdir := filepath.Join("testdata", "fuzz", "FuzzJoin")
		if err := os.MkdirAll(jdir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, a := range seeds {
			b, c := seeds[(i+1)%len(seeds)], seeds[(i*7+3)%len(seeds)]
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n[]byte(%q)\n", a, b, c)
			if err := os.WriteFile(filepath.Join(jdir, fmt.Sprintf("seed%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) < len(seeds) {
		t.Fatalf("seed corpus %s missing (%v); run go test -run TestSeedCorpus -update-corpus", dir, err)
	}
}
