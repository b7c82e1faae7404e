package node

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gossipmesh/gossipmesh/crdt"
)

// envelopeVersion is the first byte of every gossiped message. Version 3
// adds mixedPartition.
const envelopeVersion = 3

// mixedPartition is the header partition of a message on the all-partition
// topic of a fully replicated mesh: its records may be of any partition,
// each one's given by its key. Partitions number at most 1<<16, so no
// partition has this index.
const mixedPartition = 1 << 16

// maxEnvelopeRecords bounds the deltas one gossip message carries. The
// publisher packs the deltas that queued up while it was busy into one
// message per topic, so a burst of writes costs one signature and one
// verification per message rather than per key.
const maxEnvelopeRecords = 256

// ErrBadEnvelope is returned for a gossip message that cannot be decoded.
var ErrBadEnvelope = errors.New("node: malformed delta envelope")

// envelope is one gossip message: deltas of keys of one partition, or of
// any partitions when part is mixedPartition.
//
//	version(1) meshID(8) partition(uvarint) count(uvarint) record*count
//	record: keyLen(uvarint) key wall(varint) logical(uvarint)
//	        node(8, big endian) stateLen(uvarint) state
type envelope struct {
	mesh    [8]byte
	part    uint32
	records []deltaRecord
}

// deltaRecord is one key's delta with the writer's HLC timestamp (for
// clock-drift checks and to advance the receiver's clock).
type deltaRecord struct {
	key   []byte
	stamp crdt.Timestamp
	state []byte
}

func appendEnvelopeHeader(dst []byte, mesh [8]byte, part uint32, count int) []byte {
	dst = append(dst, envelopeVersion)
	dst = append(dst, mesh[:]...)
	dst = binary.AppendUvarint(dst, uint64(part))
	return binary.AppendUvarint(dst, uint64(count))
}

func appendDeltaRecord(dst []byte, r deltaRecord) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(r.key)))
	dst = append(dst, r.key...)
	dst = binary.AppendVarint(dst, r.stamp.Wall)
	dst = binary.AppendUvarint(dst, uint64(r.stamp.Logical))
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.stamp.Node))
	dst = binary.AppendUvarint(dst, uint64(len(r.state)))
	return append(dst, r.state...)
}

func appendEnvelope(dst []byte, e envelope) []byte {
	dst = appendEnvelopeHeader(dst, e.mesh, e.part, len(e.records))
	for _, r := range e.records {
		dst = appendDeltaRecord(dst, r)
	}
	return dst
}

// decodeEnvelope parses b without copying; the result aliases b. Every
// length is checked against the limits before it is used.
func decodeEnvelope(b []byte, maxKey, maxState int) (envelope, error) {
	var e envelope
	bad := func(what string) (envelope, error) {
		return envelope{}, fmt.Errorf("%w: %s", ErrBadEnvelope, what)
	}
	if len(b) < 1+8 {
		return bad("truncated header")
	}
	if b[0] != envelopeVersion {
		return bad(fmt.Sprintf("unknown version %d", b[0]))
	}
	copy(e.mesh[:], b[1:9])
	b = b[9:]
	part, k := binary.Uvarint(b)
	if k <= 0 || part > 1<<16 {
		return bad("partition")
	}
	e.part, b = uint32(part), b[k:]
	count, k := binary.Uvarint(b)
	if k <= 0 || count == 0 || count > maxEnvelopeRecords {
		return bad(fmt.Sprintf("record count outside [1, %d]", maxEnvelopeRecords))
	}
	b = b[k:]
	e.records = make([]deltaRecord, 0, count)
	for range count {
		var r deltaRecord
		var err error
		if r, b, err = decodeDeltaRecord(b, maxKey, maxState); err != nil {
			return envelope{}, err
		}
		e.records = append(e.records, r)
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return e, nil
}

func decodeDeltaRecord(b []byte, maxKey, maxState int) (deltaRecord, []byte, error) {
	var r deltaRecord
	bad := func(what string) (deltaRecord, []byte, error) {
		return deltaRecord{}, nil, fmt.Errorf("%w: %s", ErrBadEnvelope, what)
	}
	keyLen, k := binary.Uvarint(b)
	if k <= 0 {
		return bad("key length")
	}
	b = b[k:]
	if keyLen == 0 || keyLen > uint64(maxKey) {
		return bad(fmt.Sprintf("key length %d outside [1, %d]", keyLen, maxKey))
	}
	if keyLen > uint64(len(b)) {
		return bad("truncated key")
	}
	r.key, b = b[:keyLen], b[keyLen:]
	wall, k := binary.Varint(b)
	if k <= 0 {
		return bad("timestamp")
	}
	b = b[k:]
	logical, k := binary.Uvarint(b)
	if k <= 0 || logical > 1<<32-1 {
		return bad("timestamp")
	}
	b = b[k:]
	if len(b) < 8 {
		return bad("truncated node id")
	}
	r.stamp = crdt.Timestamp{Wall: wall, Logical: uint32(logical), Node: crdt.NodeID(binary.BigEndian.Uint64(b))}
	b = b[8:]
	stateLen, k := binary.Uvarint(b)
	if k <= 0 {
		return bad("state length")
	}
	b = b[k:]
	if stateLen == 0 {
		return bad("empty state")
	}
	if stateLen > uint64(maxState) {
		return bad(fmt.Sprintf("state of %d bytes exceeds %d", stateLen, maxState))
	}
	if stateLen > uint64(len(b)) {
		return bad("truncated state")
	}
	r.state, b = b[:stateLen], b[stateLen:]
	return r, b, nil
}
