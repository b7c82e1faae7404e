package backup

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

func encodeSealed(t testing.TB, recs []Record, key []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := WriteWith(&buf, seqOf(recs), WriteOptions{Key: key}); err != nil {
		t.Fatalf("WriteWith: %v", err)
	}
	return buf.Bytes()
}

// sealedRecords are incompressible enough to need several sealed chunks.
func sealedRecords(seed uint64) []Record {
	rng := rand.New(rand.NewPCG(seed, 0))
	recs := make([]Record, 40)
	for i := range recs {
		state := make([]byte, 4<<10)
		for j := range state {
			state[j] = byte(rng.Uint32())
		}
		copy(state, fmt.Sprintf("plaintext-marker-%d", i))
		recs[i] = Record{Key: []byte(fmt.Sprintf("key/%03d", i)), State: state}
	}
	return recs
}

func TestSealedRoundTripHidesValues(t *testing.T) {
	key := bytes.Repeat([]byte{1}, KeyBytes)
	recs := sealedRecords(1)
	data := encodeSealed(t, recs, key)
	if len(data) < 2*sealChunk {
		t.Fatalf("test backup is %d bytes; want several chunks", len(data))
	}
	if bytes.Contains(data, []byte("plaintext-marker")) || bytes.Contains(data, []byte("key/0")) {
		t.Fatal("a sealed backup shows keys or values in the clear")
	}
	if plain := encode(t, recs); !bytes.Contains(plain, []byte("key/0")) {
		t.Fatal("the plain backup of the same records hides its keys: the check above proves nothing")
	}
	var got []Record
	if err := ReadWith(bytes.NewReader(data), key, func(r Record) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("read %d records, want %d", len(got), len(recs))
	}
	for i := range recs {
		if !bytes.Equal(got[i].Key, recs[i].Key) || !bytes.Equal(got[i].State, recs[i].State) {
			t.Fatalf("record %d differs", i)
		}
	}
}

func TestSealedNeedsItsKey(t *testing.T) {
	key := bytes.Repeat([]byte{1}, KeyBytes)
	data := encodeSealed(t, sealedRecords(2), key)
	if _, err := Verify(bytes.NewReader(data)); !errors.Is(err, ErrSealed) {
		t.Errorf("Verify without a key: %v, want ErrSealed", err)
	}
	if _, err := VerifyWith(bytes.NewReader(data), bytes.Repeat([]byte{2}, KeyBytes)); !errors.Is(err, ErrWrongKey) {
		t.Errorf("VerifyWith another key: %v, want ErrWrongKey", err)
	}
	if _, err := Restore(bytes.NewReader(data), RestoreOptions{TempDir: t.TempDir()}, func([]Record) error {
		t.Fatal("merge called for a sealed backup without its key")
		return nil
	}); !errors.Is(err, ErrSealed) {
		t.Errorf("Restore without a key: %v, want ErrSealed", err)
	}
	// A plain backup restores whatever key the restorer has.
	if _, err := VerifyWith(bytes.NewReader(encode(t, sealedRecords(2))), key); err != nil {
		t.Errorf("plain backup with a key: %v", err)
	}
}

// Every changed byte and every cut is refused, before anything is merged.
func TestSealedDamageIsRefused(t *testing.T) {
	key := bytes.Repeat([]byte{1}, KeyBytes)
	data := encodeSealed(t, sealedRecords(3), key)
	rng := rand.New(rand.NewPCG(3, 3))
	t.Logf("seed 3")
	for range 200 {
		bad := bytes.Clone(data)
		i := rng.IntN(len(bad))
		bad[i] ^= byte(1 + rng.IntN(255))
		if _, err := VerifyWith(bytes.NewReader(bad), key); err == nil {
			t.Fatalf("a flip at byte %d of %d verified", i, len(data))
		} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrWrongKey) && !errors.Is(err, ErrVersion) {
			t.Fatalf("flip at %d: %v is none of the sentinels", i, err)
		}
	}
	for _, cut := range []int{headerLen + 3, headerLen + sealHeaderExtra + 2, sealChunk, len(data) - trailerLen - 1, len(data) - 1} {
		if _, err := VerifyWith(bytes.NewReader(data[:cut]), key); !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut at %d of %d: %v, want ErrTruncated or ErrCorrupt", cut, len(data), err)
		}
	}
}

func TestSealedKeyLength(t *testing.T) {
	if _, err := WriteWith(&bytes.Buffer{}, seqOf(nil), WriteOptions{Key: []byte("short")}); !errors.Is(err, ErrKey) {
		t.Fatalf("a 5-byte key: %v, want ErrKey", err)
	}
}

// Check, without the key, still refuses a damaged or cut sealed copy.
func TestCheckSealedWithoutKey(t *testing.T) {
	key := bytes.Repeat([]byte{1}, KeyBytes)
	recs := sealedRecords(4)
	data := encodeSealed(t, recs, key)
	if n, err := Check(bytes.NewReader(data)); err != nil || n != len(recs) {
		t.Fatalf("Check = %d, %v; want %d records", n, err, len(recs))
	}
	if n, err := Check(bytes.NewReader(encode(t, recs))); err != nil || n != len(recs) {
		t.Fatalf("Check of a plain backup = %d, %v", n, err)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	for range 100 {
		bad := bytes.Clone(data)
		i := headerLen + rng.IntN(len(bad)-headerLen) // the version byte would make it another format
		bad[i] ^= byte(1 + rng.IntN(255))
		if _, err := Check(bytes.NewReader(bad)); err == nil {
			t.Fatalf("Check passed a flip at byte %d of %d", i, len(data))
		}
	}
	if _, err := Check(bytes.NewReader(data[:len(data)-trailerLen-3])); !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Check of a cut copy: %v", err)
	}
}
