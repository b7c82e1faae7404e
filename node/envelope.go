package node

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gossipmesh/gossipmesh/crdt"
)

// envelopeVersion is the first byte of every gossiped delta.
const envelopeVersion = 1

// ErrBadEnvelope is returned for a gossip message that cannot be decoded.
var ErrBadEnvelope = errors.New("node: malformed delta envelope")

// envelope is one gossiped delta: the key, the writer's HLC timestamp (for
// clock-drift checks and to advance the receiver's clock) and the encoded
// delta state.
//
//	version(1) meshID(8) partition(uvarint) keyLen(uvarint) key
//	wall(varint) logical(uvarint) node(8, big endian) state(rest)
type envelope struct {
	mesh  [8]byte
	part  uint32
	key   []byte
	stamp crdt.Timestamp
	state []byte
}

func appendEnvelope(dst []byte, e envelope) []byte {
	dst = append(dst, envelopeVersion)
	dst = append(dst, e.mesh[:]...)
	dst = binary.AppendUvarint(dst, uint64(e.part))
	dst = binary.AppendUvarint(dst, uint64(len(e.key)))
	dst = append(dst, e.key...)
	dst = binary.AppendVarint(dst, e.stamp.Wall)
	dst = binary.AppendUvarint(dst, uint64(e.stamp.Logical))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.stamp.Node))
	return append(dst, e.state...)
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
	e.key, b = b[:keyLen], b[keyLen:]
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
	e.stamp = crdt.Timestamp{Wall: wall, Logical: uint32(logical), Node: crdt.NodeID(binary.BigEndian.Uint64(b))}
	e.state = b[8:]
	if len(e.state) == 0 {
		return bad("empty state")
	}
	if len(e.state) > maxState {
		return bad(fmt.Sprintf("state of %d bytes exceeds %d", len(e.state), maxState))
	}
	return e, nil
}
