package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"testing"
)

func seqOf(recs []Record) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func sampleRecords(n int, rng *rand.Rand) []Record {
	recs := make([]Record, n)
	for i := range recs {
		state := make([]byte, rng.IntN(300))
		for j := range state {
			state[j] = byte(rng.IntN(256))
		}
		recs[i] = Record{Key: []byte(fmt.Sprintf("key/%06d", i)), State: state}
	}
	return recs
}

func encode(t testing.TB, recs []Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := Write(&buf, seqOf(recs))
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if n != len(recs) {
		t.Fatalf("Write count = %d, want %d", n, len(recs))
	}
	return buf.Bytes()
}

func readAll(t testing.TB, data []byte) []Record {
	t.Helper()
	var got []Record
	if err := Read(bytes.NewReader(data), func(r Record) error {
		got = append(got, r)
		return nil
	}); err != nil {
		t.Fatalf("Read: %v", err)
	}
	return got
}

func TestRoundTrip(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, n := range []int{0, 1, 7, 2500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			recs := sampleRecords(n, rng)
			data := encode(t, recs)
			if string(data[:4]) != Magic {
				t.Fatalf("file starts %q, want magic", data[:4])
			}
			count, err := Verify(bytes.NewReader(data))
			if err != nil || count != n {
				t.Fatalf("Verify = %d, %v; want %d, nil", count, err, n)
			}
			got := readAll(t, data)
			if len(got) != n {
				t.Fatalf("Read %d records, want %d", len(got), n)
			}
			for i := range got {
				if !bytes.Equal(got[i].Key, recs[i].Key) || !bytes.Equal(got[i].State, recs[i].State) {
					t.Fatalf("record %d differs", i)
				}
			}
		})
	}
}

func TestWriteRefusesBadRecords(t *testing.T) {
	for name, rec := range map[string]Record{
		"empty key": {Key: nil, State: []byte("s")},
		"long key":  {Key: make([]byte, MaxKeyBytes+1)},
	} {
		_, err := Write(io.Discard, seqOf([]Record{rec}))
		if !errors.Is(err, ErrRecord) {
			t.Errorf("%s: err = %v, want ErrRecord", name, err)
		}
	}
}

// A source that fails must leave a file that Verify refuses: a failed backup
// may never pass for a complete one.
func TestWriteSourceErrorLeavesInvalidFile(t *testing.T) {
	boom := errors.New("boom")
	var buf bytes.Buffer
	_, err := Write(&buf, func(yield func(Record, error) bool) {
		if yield(Record{Key: []byte("a"), State: []byte("1")}, nil) {
			yield(Record{}, boom)
		}
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write err = %v, want boom", err)
	}
	if _, err := Verify(&buf); err == nil {
		t.Fatal("Verify accepted the output of a failed Write")
	}
}

func TestTruncatedRefused(t *testing.T) {
	data := encode(t, sampleRecords(50, rand.New(rand.NewPCG(1, 2))))
	for cut := 0; cut < len(data); cut++ {
		_, err := Verify(bytes.NewReader(data[:cut]))
		if err == nil {
			t.Fatalf("Verify accepted a file cut at %d of %d bytes", cut, len(data))
		}
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut at %d: err = %v, want ErrTruncated or ErrCorrupt", cut, err)
		}
	}
	// A clean cut in the body is reported as truncation, not corruption, so
	// users know to look at the copy rather than the disk.
	if _, err := Verify(bytes.NewReader(data[:len(data)/2])); !errors.Is(err, ErrTruncated) {
		t.Errorf("half file: err = %v, want ErrTruncated", err)
	}
	if _, err := Verify(bytes.NewReader(data[:3])); !errors.Is(err, ErrTruncated) {
		t.Errorf("3-byte file: err = %v, want ErrTruncated", err)
	}
}

func TestBitFlipRefused(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	data := encode(t, sampleRecords(50, rng))
	// Every byte once, one random bit each, covers header, body and trailer.
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 1 << rng.IntN(8)
		if _, err := Verify(bytes.NewReader(bad)); err == nil {
			t.Fatalf("Verify accepted a flip at byte %d of %d", i, len(data))
		}
	}
}

func TestVersionAndMagic(t *testing.T) {
	data := encode(t, nil)
	bad := bytes.Clone(data)
	bad[4] = 9
	if _, err := Verify(bytes.NewReader(bad)); !errors.Is(err, ErrVersion) {
		t.Errorf("version 9: err = %v, want ErrVersion", err)
	}
	if _, err := Verify(bytes.NewReader([]byte("PK\x03\x04 a zip file"))); !errors.Is(err, ErrCorrupt) {
		t.Errorf("zip: err = %v, want ErrCorrupt", err)
	}
	if _, err := Verify(bytes.NewReader(nil)); !errors.Is(err, ErrTruncated) {
		t.Errorf("empty: err = %v, want ErrTruncated", err)
	}
}

func TestTrailingDataRefused(t *testing.T) {
	data := encode(t, sampleRecords(3, rand.New(rand.NewPCG(4, 5))))
	// A second complete backup body glued on is still refused.
	tail := encode(t, nil)[headerLen:]
	for name, extra := range map[string][]byte{"junk": []byte("junk"), "frame": tail} {
		if _, err := Verify(bytes.NewReader(append(bytes.Clone(data), extra...))); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s appended: err = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestReadCallbackError(t *testing.T) {
	data := encode(t, sampleRecords(5, rand.New(rand.NewPCG(6, 7))))
	stop := errors.New("stop")
	calls := 0
	err := Read(bytes.NewReader(data), func(Record) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Read = %v after %d calls, want stop after 1", err, calls)
	}
}

func TestRestoreBatchesAndRefusesCorrupt(t *testing.T) {
	recs := sampleRecords(25, rand.New(rand.NewPCG(8, 9)))
	data := encode(t, recs)

	var got []Record
	batches := 0
	n, err := Restore(bytes.NewReader(data), RestoreOptions{TempDir: t.TempDir(), BatchRecords: 10}, func(b []Record) error {
		batches++
		if len(b) > 10 {
			t.Errorf("batch of %d, want at most 10", len(b))
		}
		got = append(got, b...)
		return nil
	})
	if err != nil || n != 25 || len(got) != 25 || batches != 3 {
		t.Fatalf("Restore = %d, %v; got %d records in %d batches", n, err, len(got), batches)
	}

	for name, bad := range map[string][]byte{
		"truncated": data[:len(data)-5],
		"flipped":   func() []byte { b := bytes.Clone(data); b[len(b)/2] ^= 0x10; return b }(),
	} {
		called := false
		_, err := Restore(bytes.NewReader(bad), RestoreOptions{TempDir: t.TempDir()}, func([]Record) error {
			called = true
			return nil
		})
		if err == nil || called {
			t.Errorf("%s: Restore err = %v, merge called = %v; want refusal before any merge", name, err, called)
		}
	}
}

type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// An input that fails (network, disk, size limit) is reported as that
// failure, not as a corrupt file.
func TestInputErrorIsNotCorruption(t *testing.T) {
	data := encode(t, sampleRecords(5, rand.New(rand.NewPCG(10, 11))))
	boom := errors.New("connection reset")
	for _, cut := range []int{2, len(data) / 2} {
		_, err := Verify(&failingReader{r: bytes.NewReader(data[:cut]), err: boom})
		if !errors.Is(err, boom) || errors.Is(err, ErrCorrupt) {
			t.Errorf("cut %d: err = %v, want the input's error", cut, err)
		}
	}
}
