package node

import (
	"bytes"

	"github.com/gossipmesh/gossipmesh/sync/antientropy"
	"github.com/gossipmesh/gossipmesh/sync/merkle"
)

// This file exposes, for benchmarks and tools, exactly what a node puts on
// a sync stream, so that they count its bytes instead of estimating them.

// PartitionOf returns the partition of key in a mesh of the given
// partition count, as a node places it.
func PartitionOf(key []byte, partitions int) uint32 { return partitionOf(key, partitions) }

// SyncConfig returns the session configuration a node of cfg runs
// anti-entropy with.
func SyncConfig(cfg Config) antientropy.Config { return (&Node{cfg: cfg}).syncConfig() }

// SyncWire is one direction of a sync stream held in memory: Write frames
// a payload exactly as a node writes it (length prefix, flag byte, zstd
// above Config.CompressAbove) and Read takes the frames back in order, as
// the peer's node reads them. It is not safe for concurrent use.
type SyncWire struct {
	buf bytes.Buffer
	w   *framer
	r   *framer
}

// NewSyncWire returns an empty direction of a sync stream between nodes
// of cfg (start from DefaultConfig).
func NewSyncWire(cfg Config) (*SyncWire, error) {
	sw := &SyncWire{}
	limit := SyncConfig(cfg).MaxFrameBytes
	var err error
	if sw.w, err = newFramer(&sw.buf, limit, cfg.CompressAbove); err != nil {
		return nil, err
	}
	if sw.r, err = newFramer(&sw.buf, limit, cfg.CompressAbove); err != nil {
		sw.w.close()
		return nil, err
	}
	return sw, nil
}

// Write frames payload onto the wire and returns the bytes it took there.
func (sw *SyncWire) Write(payload []byte) (int, error) {
	before := sw.w.sent
	err := sw.w.write(payload)
	return int(sw.w.sent - before), err
}

// Read returns the next frame's payload, as the receiving node gets it.
func (sw *SyncWire) Read() ([]byte, error) { return sw.r.read() }

// WriteHello frames the hello a node of cfg opens a sync stream with,
// holding the given partition roots and storing every partition, and
// returns the bytes it took on the wire.
func (sw *SyncWire) WriteHello(cfg Config, roots []merkle.Hash) (int, error) {
	h := hello{mesh: meshID(cfg.Mesh, cfg.Partitions, cfg.Replication), partitions: cfg.Partitions,
		replication: cfg.Replication, name: cfg.Mesh, roots: roots}
	h.stores = bytes.Repeat([]byte{0xff}, bitmapLen(cfg.Partitions))
	h.fresh = make([]byte, len(h.stores))
	return sw.Write(appendHello(nil, h))
}

// ReadHello reads a hello framed by WriteHello and returns its roots.
func (sw *SyncWire) ReadHello(cfg Config) ([]merkle.Hash, error) {
	b, err := sw.r.readMax(helloMaxBytes(cfg.Partitions))
	if err != nil {
		return nil, err
	}
	h, err := decodeHello(b)
	return h.roots, err
}

// Close releases the wire's compressors.
func (sw *SyncWire) Close() {
	sw.w.close()
	sw.r.close()
}
