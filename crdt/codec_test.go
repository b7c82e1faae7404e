package crdt

import (
	"bytes"
	"encoding/hex"
	"errors"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sampleStates returns one non-trivial state of every kind, plus empties.
func sampleStates() map[string]State {
	const a, b = NodeID(1), NodeID(2)
	lww := &LWW{}
	lww.Set([]byte("hello"), Timestamp{Wall: 1e18, Logical: 3, Node: a})
	tomb := &LWW{}
	tomb.Delete(Timestamp{Wall: 5, Node: b})

	mv1, mv2 := &MVRegister{}, &MVRegister{}
	mv1.Write(a, []byte("x"))
	mv2.Write(b, []byte("y"))
	mv1.Merge(mv2)

	c := &Counter{}
	c.Add(a, 10)
	c.Add(b, -3)

	s1, s2 := &ORSet{}, &ORSet{}
	s1.Add(a, []byte("apple"))
	s1.Add(a, []byte("pear"))
	s2.Merge(s1)
	s2.Remove([]byte("pear"))
	s2.Add(b, []byte("fig"))
	s1.Add(a, []byte("kiwi"))
	s2.Merge(s1.Add(a, []byte("plum"))) // delta only: leaves a gap in s2's context

	// The same kinds at a non-zero generation (see EncodingVersionGen).
	gen := Timestamp{Wall: 7, Logical: 1, Node: b}
	lwwGen := atGen(KindLWW, gen).(*LWW)
	lwwGen.Set([]byte("moved"), gen)
	tombGen := atGen(KindLWW, gen).(*LWW)
	tombGen.Delete(Timestamp{Wall: 8, Node: a})
	cGen := atGen(KindCounter, gen).(*Counter)
	cGen.Add(a, -4)
	sGen := atGen(KindSet, gen).(*ORSet)
	sGen.Add(b, []byte("x"))
	mvGen := atGen(KindMVRegister, gen).(*MVRegister)
	mvGen.Write(a, []byte("w"))

	return map[string]State{
		"lww": lww, "lww-tombstone": tomb, "lww-empty": &LWW{},
		"mv": mv1, "mv-empty": &MVRegister{},
		"counter": c, "counter-empty": &Counter{},
		"set": s2, "set-empty": &ORSet{},
		"gen-lww": lwwGen, "gen-lww-tombstone": tombGen, "gen-lww-empty": atGen(KindLWW, gen),
		"gen-mv": mvGen, "gen-counter": cGen, "gen-counter-empty": atGen(KindCounter, gen),
		"gen-set": sGen, "gen-set-empty": atGen(KindSet, gen),
	}
}

// atGen is NewAt for arguments known to be valid.
func atGen(k Kind, gen Timestamp) State {
	s, err := NewAt(k, gen)
	if err != nil {
		panic(err)
	}
	return s
}

// TestDecodesVersion1 decodes states encoded by the release before kind
// generations (testdata/v1-states.txt, written by it): each is at
// generation zero and re-encodes to the same bytes, so stored states and
// their digests are unchanged.
func TestDecodesVersion1(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "v1-states.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := sampleStates()
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, line := range lines {
		name, hexEnc, _ := strings.Cut(line, " ")
		enc, err := hex.DecodeString(hexEnc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s, err := Decode(enc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !s.Generation().IsZero() || !bytes.Equal(Encode(s), enc) || !Equal(s, want[name]) {
			t.Errorf("%s: decoded at generation %v, re-encoded %x, want %x", name, s.Generation(), Encode(s), enc)
		}
	}
	if len(lines) < 9 {
		t.Fatalf("%d golden states, want every kind", len(lines))
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	for name, s := range sampleStates() {
		enc := Encode(s)
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Kind() != s.Kind() || !bytes.Equal(Encode(got), enc) {
			t.Errorf("%s: round trip changed the state", name)
		}
		if !bytes.Equal(AppendEncode([]byte("prefix"), s)[6:], enc) {
			t.Errorf("%s: AppendEncode differs from Encode", name)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	valid := Encode(sampleStates()["set"])
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"version only", []byte{EncodingVersion}, ErrTruncated},
		{"unknown version", []byte{EncodingVersionGen + 1, byte(KindLWW), 0}, ErrUnknownVersion},
		{"version zero", []byte{0}, ErrUnknownVersion},
		{"unknown kind", []byte{EncodingVersion, 9}, ErrUnknownKind},
		{"kind zero", []byte{EncodingVersion, 0, 0}, ErrUnknownKind},
		{"too large", make([]byte, MaxEncodedSize+1), ErrTooLarge},
		{"lww no tag", []byte{EncodingVersion, byte(KindLWW)}, ErrTruncated},
		{"lww bad tag", []byte{EncodingVersion, byte(KindLWW), 3}, ErrMalformed},
		{"lww zero timestamp", append([]byte{EncodingVersion, byte(KindLWW), lwwTombstone}, make([]byte, 17)...), ErrMalformed},
		{"trailing byte", []byte{EncodingVersion, byte(KindLWW), lwwEmpty, 0}, ErrMalformed},
		{"non-minimal varint", []byte{EncodingVersion, byte(KindCounter), 0x80, 0x00}, ErrMalformed},
		{"varint overflow", append([]byte{EncodingVersion, byte(KindCounter)}, bytes.Repeat([]byte{0xff}, 11)...), ErrMalformed},
		{"huge count", []byte{EncodingVersion, byte(KindCounter), 0xff, 0xff, 0xff, 0xff, 0x0f}, ErrTruncated},
		{"counter zero entry", append(append([]byte{EncodingVersion, byte(KindCounter), 1}, make([]byte, 8)...), 0, 0), ErrMalformed},
		{"generation truncated", []byte{EncodingVersionGen, byte(KindLWW), 0, 0, 0}, ErrTruncated},
		{"zero generation", append(append([]byte{EncodingVersionGen, byte(KindLWW)}, make([]byte, 17)...), lwwEmpty), ErrMalformed},
		{"generation before the epoch", append(append([]byte{EncodingVersionGen, byte(KindCounter), 0x80}, make([]byte, 16)...), 0), ErrMalformed},
		{"set member outside context", append(append([]byte{EncodingVersion, byte(KindSet), 0, 1, 1, 'x', 1}, make([]byte, 7)...), 1, 1), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Decode(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %v, %v; want %v", s, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "crdt: ") {
				t.Errorf("error %q lacks the crdt: prefix", err)
			}
		})
	}
	// Every strict prefix of a valid encoding is truncated, never anything else.
	for n := 0; n < len(valid); n++ {
		if _, err := Decode(valid[:n]); !errors.Is(err, ErrTruncated) {
			t.Errorf("prefix %d/%d: %v, want ErrTruncated", n, len(valid), err)
		}
	}
	// So is every prefix of one with a generation.
	withGen := Encode(sampleStates()["gen-set"])
	for n := 0; n < len(withGen); n++ {
		if _, err := Decode(withGen[:n]); !errors.Is(err, ErrTruncated) {
			t.Errorf("generation prefix %d/%d: %v, want ErrTruncated", n, len(withGen), err)
		}
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	enc := Encode(sampleStates()["lww"])
	s, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range enc {
		enc[i] = 0xAA
	}
	if v, _ := s.(*LWW).Value(); string(v) != "hello" {
		t.Fatalf("decoded value changed with input buffer: %q", v)
	}
}

func TestMergeKindMismatch(t *testing.T) {
	err := Merge(&LWW{}, &Counter{})
	if !errors.Is(err, ErrKindMismatch) {
		t.Fatalf("err = %v", err)
	}
	for k := KindLWW; k <= KindSet; k++ {
		s, err := New(k)
		if err != nil || s.Kind() != k {
			t.Fatalf("New(%v) = %v, %v", k, s, err)
		}
		if err := Merge(s, sampleStatesByKind(k)); err != nil {
			t.Fatalf("Merge %v: %v", k, err)
		}
	}
	if _, err := New(0); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("New(0) err = %v", err)
	}
	if KindSet.String() != "set" || Kind(99).String() != "kind(99)" {
		t.Fatal("Kind.String")
	}
}

func sampleStatesByKind(k Kind) State {
	for _, s := range sampleStates() {
		if s.Kind() == k {
			return s
		}
	}
	return nil
}

func TestLWWSemantics(t *testing.T) {
	var r LWW
	if _, ok := r.Value(); ok {
		t.Fatal("empty register has a value")
	}
	r.Set([]byte("a"), Timestamp{Wall: 10, Node: 1})
	r.Set([]byte("old"), Timestamp{Wall: 5, Node: 2}) // loses
	if v, ok := r.Value(); !ok || string(v) != "a" {
		t.Fatalf("Value = %q, %v", v, ok)
	}
	d := r.Delete(Timestamp{Wall: 11, Node: 1})
	if _, ok := r.Value(); ok || !r.Deleted() || r.Timestamp() != d.Timestamp() {
		t.Fatal("delete did not win")
	}
	r.Set([]byte("b"), Timestamp{Wall: 11, Node: 2}) // same wall, higher node wins
	if v, ok := r.Value(); !ok || string(v) != "b" {
		t.Fatalf("tie-break: Value = %q, %v", v, ok)
	}
	in := []byte("c")
	r.Set(in, Timestamp{Wall: 12, Node: 1})
	in[0] = 'X'
	if v, _ := r.Value(); string(v) != "c" {
		t.Fatal("Set did not copy its input")
	}
}

func TestMVRegisterSemantics(t *testing.T) {
	var a, b MVRegister
	a.Write(1, []byte("x"))
	b.Write(2, []byte("y"))
	a.Merge(&b)
	if got := a.Values(); len(got) != 2 || string(got[0]) != "x" || string(got[1]) != "y" {
		t.Fatalf("concurrent writes: %q", got)
	}
	d := a.Write(1, []byte("z")) // has seen both: supersedes both
	b.Merge(d)
	for _, r := range []*MVRegister{&a, &b} {
		if got := r.Values(); len(got) != 1 || string(got[0]) != "z" {
			t.Fatalf("after superseding write: %q", got)
		}
	}
}

func TestCounterSemantics(t *testing.T) {
	var a, b Counter
	a.Add(1, 5)
	a.Add(1, -2)
	b.Add(2, 10)
	b.Merge(a.Add(1, 1))
	a.Merge(&b)
	if a.Value() != 14 || b.Value() != 14 {
		t.Fatalf("values %d %d, want 14", a.Value(), b.Value())
	}
	var c Counter
	c.Add(3, -1<<63) // MinInt64 must not overflow
	if c.Value() != -1<<63 {
		t.Fatalf("MinInt64: %d", c.Value())
	}
}

func TestORSetAddWins(t *testing.T) {
	var a, b ORSet
	b.Merge(a.Add(1, []byte("m")))
	rm := a.Remove([]byte("m"))  // a removes what it saw...
	add := b.Add(2, []byte("m")) // ...while b concurrently re-adds
	a.Merge(add)
	b.Merge(rm)
	if !a.Contains([]byte("m")) || !b.Contains([]byte("m")) {
		t.Fatal("concurrent add lost to remove")
	}
	b.Merge(a.Remove([]byte("m")))
	if b.Contains([]byte("m")) || b.Len() != 0 || len(b.Members()) != 0 {
		t.Fatal("observed remove did not remove")
	}
	if len(b.members) != 0 || len(b.index) != 0 {
		t.Fatal("removed member left per-element state")
	}
	if len(rm.members) != 0 {
		t.Fatal("remove delta carries members")
	}
}

func TestCollect(t *testing.T) {
	const grace = time.Hour
	now := int64(10 * time.Hour)
	tomb := &LWW{}
	tomb.Delete(Timestamp{Wall: now - int64(grace) - 1, Node: 1})
	young := &LWW{}
	young.Delete(Timestamp{Wall: now - int64(grace), Node: 1})
	live := &LWW{}
	live.Set([]byte("v"), Timestamp{Wall: 1, Node: 1})
	tests := []struct {
		name string
		s    State
		drop bool
	}{
		{"old tombstone", tomb, true},
		{"tombstone within grace", young, false},
		{"old live value", live, false},
		{"empty lww", &LWW{}, true},
		{"empty set", &ORSet{}, true},
		{"counter", sampleStates()["counter"], false},
		{"set", sampleStates()["set"], false},
		{"mv", sampleStates()["mv"], false},
		{"old tombstone of a later generation", sampleStates()["gen-lww-tombstone"], false},
		{"empty lww of a later generation", sampleStates()["gen-lww-empty"], false},
		{"empty set of a later generation", sampleStates()["gen-set-empty"], false},
	}
	for _, tc := range tests {
		out, drop := Collect(tc.s, now, grace)
		if drop != tc.drop || out != tc.s {
			t.Errorf("%s: drop = %v, want %v", tc.name, drop, tc.drop)
		}
	}
}

// TestImportsStdlibOnly keeps the core pure: no third-party imports.
func TestImportsStdlibOnly(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports non-stdlib %q", fset.Position(imp.Pos()), path)
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no files checked")
	}
}
