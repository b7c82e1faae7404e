package node

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
)

func lwwRecord(key string, wall int64) deltaRecord {
	st := &crdt.LWW{}
	ts := crdt.Timestamp{Wall: wall, Node: 7}
	st.Set([]byte("v-"+key), ts)
	return deltaRecord{key: []byte(key), stamp: ts, state: crdt.Encode(st)}
}

func TestEnvelopeCarriesManyRecords(t *testing.T) {
	in := envelope{mesh: meshID("m", 16, 0), part: 5}
	for i := range 3 {
		in.records = append(in.records, lwwRecord(fmt.Sprintf("k%d", i), int64(i+1)))
	}
	out, err := decodeEnvelope(appendEnvelope(nil, in), 64, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if out.part != 5 || len(out.records) != 3 {
		t.Fatalf("decoded partition %d with %d records", out.part, len(out.records))
	}
	for i, r := range out.records {
		want := in.records[i]
		if !bytes.Equal(r.key, want.key) || r.stamp != want.stamp || !bytes.Equal(r.state, want.state) {
			t.Fatalf("record %d decoded as %+v, want %+v", i, r, want)
		}
	}
	tooMany := envelope{mesh: in.mesh, part: 5, records: make([]deltaRecord, maxEnvelopeRecords+1)}
	for i := range tooMany.records {
		tooMany.records[i] = in.records[0]
	}
	if _, err := decodeEnvelope(appendEnvelope(nil, tooMany), 64, 1024); !errors.Is(err, ErrBadEnvelope) {
		t.Fatalf("%d records: %v, want ErrBadEnvelope", len(tooMany.records), err)
	}
}

// One record for another partition makes the whole message invalid: the
// sender is faulty or hostile.
func TestPackedMessageWithAStrayRecordIsRefused(t *testing.T) {
	n := startNode(t, testConfig())
	now := time.Now().UnixNano()
	var mine, stray deltaRecord
	for i := 0; stray.key == nil || mine.key == nil; i++ {
		r := lwwRecord(fmt.Sprintf("key-%d", i), now)
		if partitionOf(r.key, n.cfg.Partitions) == 0 {
			mine = r
		} else {
			stray = r
		}
	}
	ok := appendEnvelope(nil, envelope{mesh: n.meshID, part: 0, records: []deltaRecord{mine, mine}})
	if r, err := n.checkDelta(0, ok); err != nil || len(r.records) != 2 {
		t.Fatalf("valid packed message: %v", err)
	}
	bad := appendEnvelope(nil, envelope{mesh: n.meshID, part: 0, records: []deltaRecord{mine, stray}})
	if _, err := n.checkDelta(0, bad); !errors.Is(err, ErrBadEnvelope) {
		t.Fatalf("stray record: %v, want ErrBadEnvelope", err)
	}

	// On the all-partition topic records of any partition travel together,
	// but only in a message marked as mixed, and a mixed message only there.
	mixed := appendEnvelope(nil, envelope{mesh: n.meshID, part: mixedPartition, records: []deltaRecord{mine, stray}})
	if r, err := n.checkDelta(mixedPartition, mixed); err != nil || len(r.records) != 2 {
		t.Fatalf("valid mixed message: %v", err)
	}
	if _, err := n.checkDelta(0, mixed); !errors.Is(err, ErrBadEnvelope) {
		t.Fatalf("mixed message on a partition topic: %v, want ErrBadEnvelope", err)
	}
	if _, err := n.checkDelta(mixedPartition, ok); !errors.Is(err, ErrBadEnvelope) {
		t.Fatalf("partition message on the mixed topic: %v, want ErrBadEnvelope", err)
	}
	malformed := stray
	malformed.state = []byte{0xff, 1, 2}
	withBad := appendEnvelope(nil, envelope{mesh: n.meshID, part: mixedPartition, records: []deltaRecord{mine, malformed}})
	if _, err := n.checkDelta(mixedPartition, withBad); !errors.Is(err, ErrBadEnvelope) {
		t.Fatalf("mixed message with a malformed record: %v, want ErrBadEnvelope", err)
	}
}
