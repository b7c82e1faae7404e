package backup

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzKey seals the fuzz seeds' sealed backups and opens what the fuzzer
// makes of them.
var fuzzKey = bytes.Repeat([]byte{7}, KeyBytes)

// FuzzDecode feeds arbitrary bytes to the decoder. It must never panic or
// allocate without bound, must report every failure as one of the sentinels,
// and whatever it accepts must survive a re-encode unchanged.
func FuzzDecode(f *testing.F) {
	// Seeds beyond testdata/fuzz/FuzzDecode, built here so they follow the
	// encoder if the format changes.
	f.Add(encode(f, nil))
	f.Add(encode(f, []Record{{Key: []byte("a"), State: []byte("state")}}))
	f.Add([]byte("GMBK"))
	f.Add(encodeSealed(f, []Record{{Key: []byte("a"), State: []byte("state")}}, fuzzKey))
	f.Fuzz(func(t *testing.T, data []byte) {
		var recs []Record
		err := ReadWith(bytes.NewReader(data), fuzzKey, func(r Record) error {
			recs = append(recs, r)
			return nil
		})
		n, verr := VerifyWith(bytes.NewReader(data), fuzzKey)
		if (err == nil) != (verr == nil) {
			t.Fatalf("Read err %v but Verify err %v", err, verr)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrVersion) &&
				!errors.Is(err, ErrWrongKey) {
				t.Fatalf("error %v is none of the sentinels", err)
			}
			return
		}
		if n != len(recs) {
			t.Fatalf("Verify counted %d, Read delivered %d", n, len(recs))
		}
		if _, err := Verify(bytes.NewReader(data)); data[4] == VersionSealed && !errors.Is(err, ErrSealed) {
			t.Fatalf("a sealed backup verified without its key: %v", err)
		}
		again := readAll(t, encode(t, recs))
		if len(again) != len(recs) {
			t.Fatalf("re-encode: %d records, want %d", len(again), len(recs))
		}
		for i := range recs {
			if !bytes.Equal(again[i].Key, recs[i].Key) || !bytes.Equal(again[i].State, recs[i].State) {
				t.Fatalf("re-encode: record %d differs", i)
			}
		}
	})
}
