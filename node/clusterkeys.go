package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// kvKeys lists a holder's keys: the request's one record carries the
// prefix as key and the partitions asked for (uvarints) as state; the
// answer lists the partitions the holder answers for, then their keys.
const kvKeys = 3

// MeshKeys lists the live keys under prefix across the mesh, sorted
// bytewise: with replication 0 every node stores every key, so the local
// keys; otherwise the local keys of the partitions this node holds and,
// for the others, the keys of a holder (each holder asked once for all
// the partitions it is picked for). A partition no holder answers for
// makes it fail with ErrUnavailable, naming the partitions; Keys lists
// this node's own keys only.
func (n *Node) MeshKeys(ctx context.Context, prefix []byte) ([][]byte, error) {
	var out [][]byte
	for k, err := range n.Keys(ctx, prefix) {
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if n.cfg.Replication == 0 {
		return out, nil
	}
	var missing []uint32
	for p := range uint32(n.cfg.Partitions) {
		if !n.holds(p) || n.viewIncomplete(p) {
			missing = append(missing, p)
		}
	}
	tried := map[uint32]int{} // by partition: holders asked so far
	for len(missing) > 0 {
		ask := map[peer.ID][]uint32{} // by holder
		var unasked []uint32
		for _, p := range missing {
			hs := n.otherHolders(p)
			if tried[p] >= len(hs) {
				unasked = append(unasked, p)
				continue
			}
			slices.Sort(hs)
			id := hs[tried[p]]
			tried[p]++
			ask[id] = append(ask[id], p)
		}
		if len(unasked) > 0 {
			return nil, fmt.Errorf("%w: no holder answered for partitions %v", ErrUnavailable, unasked)
		}
		missing = nil
		for id, parts := range ask {
			keys, answered := n.askKeys(ctx, id, prefix, parts)
			out = append(out, keys...)
			for _, p := range parts {
				if !slices.Contains(answered, p) {
					missing = append(missing, p)
				}
			}
		}
	}
	slices.SortFunc(out, bytes.Compare)
	return slices.CompactFunc(out, bytes.Equal), nil
}

// askKeys asks holder id for its keys under prefix in parts; it returns
// them and the partitions it answered for.
func (n *Node) askKeys(ctx context.Context, id peer.ID, prefix []byte, parts []uint32) ([][]byte, []uint32) {
	var req []byte
	for _, p := range parts {
		req = binary.AppendUvarint(req, uint64(p))
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.HolderTimeout)
	defer cancel()
	status, body, err := n.kvCall(ctx, id, kvKeys, []kvRecord{{key: prefix, state: req}})
	if err != nil || status != kvOK {
		return nil, nil
	}
	answered, keys, err := decodeKeysAnswer(body, n.cfg.Partitions)
	if err != nil {
		n.stats.deltasInvalid.Add(1)
		return nil, nil
	}
	// Only keys of the partitions asked for and answered are taken.
	keys = slices.DeleteFunc(keys, func(k []byte) bool {
		return !slices.Contains(answered, partitionOf(k, n.cfg.Partitions)) || !bytes.HasPrefix(k, prefix)
	})
	return keys, slices.DeleteFunc(answered, func(p uint32) bool { return !slices.Contains(parts, p) })
}

// serveKeys answers kvKeys for the partitions this node holds with a
// complete view; the answer must fit one frame.
func (n *Node) serveKeys(ctx context.Context, from peer.ID, rec kvRecord) (byte, []byte) {
	var parts []uint32
	for b := rec.state; len(b) > 0; {
		p, k := binary.Uvarint(b)
		if k <= 0 || p >= uint64(n.cfg.Partitions) {
			return n.refuseKV(from, fmt.Errorf("%w: keys request names no partition of this mesh", ErrBadFrame))
		}
		if n.holds(uint32(p)) && !n.viewIncomplete(uint32(p)) {
			parts = append(parts, uint32(p))
		}
		b = b[k:]
	}
	if len(parts) == 0 {
		return kvNotHolder, nil
	}
	body := binary.AppendUvarint(nil, uint64(len(parts)))
	for _, p := range parts {
		body = binary.AppendUvarint(body, uint64(p))
	}
	var keys [][]byte
	for k, err := range n.Keys(ctx, rec.key) {
		if err != nil {
			return kvInvalid, nil
		}
		if slices.Contains(parts, partitionOf(k, n.cfg.Partitions)) {
			keys = append(keys, k)
		}
	}
	body = binary.AppendUvarint(body, uint64(len(keys)))
	for _, k := range keys {
		body = binary.AppendUvarint(body, uint64(len(k)))
		body = append(body, k...)
	}
	if len(body) > n.syncConfig().MaxFrameBytes {
		return kvInvalid, nil // too many keys for one answer: list with a prefix
	}
	return kvOK, body
}

func decodeKeysAnswer(b []byte, partitions int) ([]uint32, [][]byte, error) {
	bad := fmt.Errorf("%w: keys answer", ErrBadFrame)
	count, k := binary.Uvarint(b)
	if k <= 0 || count > uint64(partitions) {
		return nil, nil, bad
	}
	b = b[k:]
	parts := make([]uint32, 0, count)
	for range count {
		p, k := binary.Uvarint(b)
		if k <= 0 || p >= uint64(partitions) {
			return nil, nil, bad
		}
		parts, b = append(parts, uint32(p)), b[k:]
	}
	count, k = binary.Uvarint(b)
	if k <= 0 || count > uint64(len(b)) {
		return nil, nil, bad
	}
	b = b[k:]
	keys := make([][]byte, 0, count)
	for range count {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, nil, bad
		}
		keys, b = append(keys, bytes.Clone(b[k:k+int(l)])), b[k+int(l):]
	}
	if len(b) != 0 {
		return nil, nil, bad
	}
	return parts, keys, nil
}
