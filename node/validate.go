package node

import (
	"fmt"

	"github.com/gossipmesh/gossipmesh/crdt"
)

// stateOverhead is how much larger than Config.MaxValueBytes an encoded
// state may be: its kind, timestamps, dots and counter entries.
const stateOverhead = 1024

// maxStateBytes is the largest encoded state the node accepts.
func (c *Config) maxStateBytes() int { return c.MaxValueBytes + stateOverhead }

// maxEntryBytes is the most one stored state may add to the store, as the
// quota counts it (entryBytes): the longest key and the largest state.
// One batch can carry the store past its quota by that much, the state
// that crossed it.
func (c *Config) maxEntryBytes() uint64 {
	return entryBytes(stateKey(make([]byte, c.MaxKeyBytes)), make([]byte, c.maxStateBytes()))
}

// checkRecord is the one validation of a key state that comes from outside
// the node, on every path it can arrive by: gossip deltas, anti-entropy
// records, hinted handoff and holder answers, and restore from a backup. It
// checks the key, the encoded size, the encoding and kind, and every
// timestamp inside the state against Config.MaxClockDrift (its kind
// generation, a register's write): a register stamped in the far future
// would win over every honest write after it.
func (n *Node) checkRecord(key, state []byte) (crdt.State, error) {
	if err := n.checkKey(key); err != nil {
		return nil, err
	}
	if len(state) > n.cfg.maxStateBytes() {
		return nil, fmt.Errorf("%w: state of %d bytes", ErrValueTooLarge, len(state))
	}
	s, err := crdt.Decode(state)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	if n.cfg.MaxClockDrift > 0 {
		limit := n.cfg.Now().Add(n.cfg.MaxClockDrift).UnixNano()
		if s.Generation().Wall > limit {
			// A generation stamped in the far future would outrank every
			// honest kind change after it.
			return nil, fmt.Errorf("%w: kind generation of %q", crdt.ErrClockDrift, key)
		}
		if lww, ok := s.(*crdt.LWW); ok && lww.Timestamp().Wall > limit {
			return nil, fmt.Errorf("%w: state of %q", crdt.ErrClockDrift, key)
		}
	}
	return s, nil
}
