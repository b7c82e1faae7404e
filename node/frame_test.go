package node

import (
	"bytes"
	"errors"
	"testing"
)

// A compressed frame round-trips, and one that inflates past the limit of
// its read is refused from its header, before it is decoded.
func TestCompressedFrameLimits(t *testing.T) {
	var buf bytes.Buffer
	w, _ := newFramer(rw{&buf, &buf}, 1<<20, 64)
	defer w.close()
	payload := bytes.Repeat([]byte("compressible "), 1000)
	if err := w.write(payload); err != nil {
		t.Fatal(err)
	}
	if buf.Len() >= len(payload) {
		t.Fatalf("frame of %d bytes for %d: not compressed", buf.Len(), len(payload))
	}
	got, err := w.read()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("round trip: %d bytes, %v", len(got), err)
	}
	if err := w.write(payload); err != nil {
		t.Fatal(err)
	}
	if _, err := w.readMax(len(payload) - 1); !errors.Is(err, ErrBadFrame) || !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("inflating past the limit: %v", err)
	}
}
