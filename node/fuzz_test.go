package node

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/sync/merkle"
)

func FuzzDecodeEnvelope(f *testing.F) {
	st := &crdt.LWW{}
	st.Set([]byte("value"), crdt.Timestamp{Wall: 1e18, Logical: 3, Node: 9})
	rec := deltaRecord{key: []byte("key"), stamp: st.Timestamp(), state: crdt.Encode(st)}
	other := rec
	other.key = []byte("another key")
	f.Add(appendEnvelope(nil, envelope{mesh: meshID("m", 16, 3), part: 3, records: []deltaRecord{rec}}))
	f.Add(appendEnvelope(nil, envelope{mesh: meshID("m", 16, 3), part: 3, records: []deltaRecord{rec, rec, rec}}))
	f.Add(appendEnvelope(nil, envelope{mesh: meshID("m", 16, 0), part: mixedPartition, records: []deltaRecord{rec, other}}))
	f.Add(appendEnvelope(nil, envelope{mesh: meshID("m", 16, 0), part: mixedPartition + 1, records: []deltaRecord{rec}}))
	f.Add([]byte{envelopeVersion})
	f.Add([]byte{envelopeVersion, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 'k'})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnvelope(b, 1024, 1<<20)
		if err != nil {
			if !errors.Is(err, ErrBadEnvelope) {
				t.Fatalf("error %v does not wrap ErrBadEnvelope", err)
			}
			return
		}
		if e.part > mixedPartition {
			t.Fatalf("partition %d passed", e.part)
		}
		if again := appendEnvelope(nil, e); !bytes.Equal(again, b) && len(again) >= len(b) {
			// Varints have non-minimal forms; a re-encoding is never longer.
			t.Fatalf("re-encoding grew: %x -> %x", b, again)
		}
	})
}

func FuzzDecodeHello(f *testing.F) {
	f.Add(appendHello(nil, hello{mesh: meshID("m", 2, 3), partitions: 2, replication: 3, name: "m", roots: make([]merkle.Hash, 2), stores: []byte{3}, fresh: []byte{1}}))
	f.Add([]byte{helloVersion, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHello(b)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v does not wrap ErrBadFrame", err)
			}
			return
		}
		if len(h.name) > 256 || h.partitions > 1<<16 || h.replication < 0 ||
			len(h.stores) != bitmapLen(h.partitions) || len(h.fresh) != len(h.stores) {
			t.Fatalf("limits not enforced: %+v", h)
		}
	})
}

type rw struct {
	io.Reader
	io.Writer
}

func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	w, _ := newFramer(rw{&buf, &buf}, 1<<16, 64)
	w.write(bytes.Repeat([]byte("compressible "), 100))
	w.write([]byte("short"))
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := newFramer(rw{bytes.NewReader(b), io.Discard}, 1<<16, 64)
		if err != nil {
			t.Fatal(err)
		}
		defer fr.close()
		for range 4 {
			p, err := fr.read()
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrBadFrame) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error type: %v", err)
				}
				return
			}
			if len(p) > 1<<16 {
				t.Fatalf("frame of %d bytes passed a 64 KiB limit", len(p))
			}
		}
	})
}

func TestFrameLengthClaimingGigabytesIsRefusedBeforeAllocating(t *testing.T) {
	claim := []byte{0x80, 0x80, 0x80, 0x80, 0x04} // a uvarint of 1 GiB
	fr, _ := newFramer(rw{bytes.NewReader(claim), io.Discard}, 4<<20, 0)
	defer fr.close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := fr.read(); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("got %v, want ErrBadFrame", err)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("allocated %d bytes while refusing an oversized frame", grew)
	}
}
