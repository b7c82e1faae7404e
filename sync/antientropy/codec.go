package antientropy

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// Version is the wire version AppendMessage writes and DecodeMessage accepts.
const Version = 1

const (
	flagMore = 1 << 0
	flagFin  = 1 << 1

	itemExplicit = 1 << 2
)

// frameOverhead bounds the header bytes of a frame: version, flags and four
// section counts.
const frameOverhead = 2 + 4*binary.MaxVarintLen32

func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// AppendMessage appends the encoding of m to dst.
//
// Layout (version 1): version byte, flags byte (1 More, 2 Fin), then four
// sections, each a uvarint count followed by its elements:
//
//	roots:   uvarint partition, uvarint count, 16-byte hash
//	records: uvarint partition, uvarint len, key, uvarint len, state
//	replies: uvarint (payload<<2 | kind); root: payload = status;
//	         hashes: payload = nbits, bitmap, 2-byte check; list: payload = nbits, bitmap
//	items:   byte (kind | explicit<<2 | window<<3 | (fanout-1)<<5),
//	         [explicit: uvarint partition, depth byte, uvarint prefix],
//	         hashes: 1<<fanout bytes; list: uvarint n, n 4-byte fingerprints
//
// It fails (wrapping ErrMalformed or ErrRecordTooLarge) only for a Message
// that DecodeMessage would reject.
func AppendMessage(dst []byte, m Message) ([]byte, error) {
	// Grown once to the exact size: appending a frame of records one by
	// one would leave it with up to a quarter of its size unused.
	dst = slices.Grow(dst, messageSize(m))
	flags := byte(0)
	if m.More {
		flags |= flagMore
	}
	if m.Fin {
		flags |= flagFin
	}
	dst = append(dst, Version, flags)
	dst = binary.AppendUvarint(dst, uint64(len(m.Roots)))
	for _, r := range m.Roots {
		dst = binary.AppendUvarint(dst, uint64(r.Partition))
		dst = binary.AppendUvarint(dst, r.Count)
		dst = append(dst, r.Hash[:]...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Records)))
	for _, r := range m.Records {
		if len(r.Key) > MaxKeyBytes {
			return dst, fmt.Errorf("%w: key of %d bytes", ErrRecordTooLarge, len(r.Key))
		}
		dst = appendRecord(dst, r)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Replies)))
	for _, r := range m.Replies {
		if err := checkReply(r); err != nil {
			return dst, err
		}
		dst = appendReply(dst, r)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Items)))
	for _, it := range m.Items {
		if err := checkItem(it); err != nil {
			return dst, err
		}
		dst = appendItem(dst, it)
	}
	return dst, nil
}

// messageSize is the encoded size of m.
func messageSize(m Message) int {
	n := 2 + uvarintLen(uint64(len(m.Roots))) + uvarintLen(uint64(len(m.Records))) +
		uvarintLen(uint64(len(m.Replies))) + uvarintLen(uint64(len(m.Items)))
	for _, r := range m.Roots {
		n += uvarintLen(uint64(r.Partition)) + uvarintLen(r.Count) + len(r.Hash)
	}
	for _, r := range m.Records {
		n += recordSize(r)
	}
	for _, r := range m.Replies {
		n += replySize(r)
	}
	for _, it := range m.Items {
		n += itemSize(it)
	}
	return n
}

func appendRecord(dst []byte, r Record) []byte {
	dst = binary.AppendUvarint(dst, uint64(r.Partition))
	dst = binary.AppendUvarint(dst, uint64(len(r.Key)))
	dst = append(dst, r.Key...)
	dst = binary.AppendUvarint(dst, uint64(len(r.State)))
	return append(dst, r.State...)
}

func recordSize(r Record) int {
	return uvarintLen(uint64(r.Partition)) + uvarintLen(uint64(len(r.Key))) + len(r.Key) +
		uvarintLen(uint64(len(r.State))) + len(r.State)
}

func checkReply(r Reply) error {
	switch r.Kind {
	case ReplyRoot:
		if r.Status > RootNotHeld {
			return fmt.Errorf("%w: root status %d", ErrMalformed, r.Status)
		}
		return nil
	case ReplyHashes:
		if r.NBits < 2 || r.NBits > 256 || r.NBits&(r.NBits-1) != 0 {
			return fmt.Errorf("%w: hashes reply of %d bits", ErrMalformed, r.NBits)
		}
	case ReplyList:
		if r.NBits < 0 {
			return fmt.Errorf("%w: list reply of %d bits", ErrMalformed, r.NBits)
		}
	default:
		return fmt.Errorf("%w: reply kind %d", ErrMalformed, r.Kind)
	}
	if len(r.Bits) != (r.NBits+7)/8 {
		return fmt.Errorf("%w: bitmap of %d bytes for %d bits", ErrMalformed, len(r.Bits), r.NBits)
	}
	if r.NBits%8 != 0 && r.Bits[len(r.Bits)-1]>>(r.NBits%8) != 0 {
		return fmt.Errorf("%w: bitmap padding not zero", ErrMalformed)
	}
	return nil
}

func appendReply(dst []byte, r Reply) []byte {
	switch r.Kind {
	case ReplyRoot:
		return binary.AppendUvarint(dst, uint64(r.Status)<<2|uint64(ReplyRoot))
	case ReplyHashes:
		dst = binary.AppendUvarint(dst, uint64(r.NBits)<<2|uint64(ReplyHashes))
		dst = append(dst, r.Bits...)
		return binary.LittleEndian.AppendUint16(dst, r.Check)
	default:
		dst = binary.AppendUvarint(dst, uint64(r.NBits)<<2|uint64(ReplyList))
		return append(dst, r.Bits...)
	}
}

func replySize(r Reply) int {
	switch r.Kind {
	case ReplyRoot:
		return 1
	case ReplyHashes:
		return uvarintLen(uint64(r.NBits)<<2) + len(r.Bits) + 2
	default:
		return uvarintLen(uint64(r.NBits)<<2) + len(r.Bits)
	}
}

func checkItem(it Item) error {
	if it.Explicit && (it.Node.Depth > 64 || it.Node.Depth < 64 && it.Node.Prefix>>it.Node.Depth != 0) {
		return fmt.Errorf("%w: node prefix %#x at depth %d", ErrMalformed, it.Node.Prefix, it.Node.Depth)
	}
	switch it.Kind {
	case ItemHashes:
		if it.Fanout < 1 || it.Fanout > 8 || it.Window > 3 || len(it.Hashes) != 1<<it.Fanout {
			return fmt.Errorf("%w: hashes item fanout %d window %d with %d hashes", ErrMalformed, it.Fanout, it.Window, len(it.Hashes))
		}
	case ItemList, ItemStream:
		if it.Fanout != 0 || it.Window != 0 || len(it.Hashes) != 0 || it.Kind == ItemStream && len(it.Fingerprints) != 0 {
			return fmt.Errorf("%w: list or stream item with hash fields", ErrMalformed)
		}
	default:
		return fmt.Errorf("%w: item kind %d", ErrMalformed, it.Kind)
	}
	return nil
}

func appendItem(dst []byte, it Item) []byte {
	h := byte(it.Kind) | it.Window<<3
	if it.Fanout > 0 {
		h |= (it.Fanout - 1) << 5
	}
	if it.Explicit {
		h |= itemExplicit
	}
	dst = append(dst, h)
	if it.Explicit {
		dst = binary.AppendUvarint(dst, uint64(it.Node.Partition))
		dst = append(dst, it.Node.Depth)
		dst = binary.AppendUvarint(dst, it.Node.Prefix)
	}
	switch it.Kind {
	case ItemHashes:
		dst = append(dst, it.Hashes...)
	case ItemList:
		dst = binary.AppendUvarint(dst, uint64(len(it.Fingerprints)))
		for _, f := range it.Fingerprints {
			dst = binary.LittleEndian.AppendUint32(dst, f)
		}
	}
	return dst
}

func itemSize(it Item) int {
	n := 1
	if it.Explicit {
		n += uvarintLen(uint64(it.Node.Partition)) + 1 + uvarintLen(it.Node.Prefix)
	}
	switch it.Kind {
	case ItemHashes:
		n += len(it.Hashes)
	case ItemList:
		n += uvarintLen(uint64(len(it.Fingerprints))) + 4*len(it.Fingerprints)
	}
	return n
}

// decoder reads a message; the first error sticks and later reads return
// zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	switch {
	case n == 0:
		d.fail(fmt.Errorf("%w: varint", ErrTruncated))
		return 0
	case n < 0 || n != uvarintLen(v):
		d.fail(fmt.Errorf("%w: bad varint", ErrMalformed))
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) u32() uint32 {
	v := d.uvarint()
	if v > math.MaxUint32 {
		d.fail(fmt.Errorf("%w: value %d overflows 32 bits", ErrMalformed, v))
		return 0
	}
	return uint32(v)
}

// count reads a section or list length, each element of which takes at
// least minSize bytes, so that a lying count cannot force a large allocation.
func (d *decoder) count(minSize int) int {
	v := d.uvarint()
	if d.err == nil && v > uint64(len(d.b)/minSize) {
		d.fail(fmt.Errorf("%w: count %d exceeds the %d bytes left", ErrTruncated, v, len(d.b)))
		return 0
	}
	return int(v)
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(fmt.Errorf("%w: need %d bytes, have %d", ErrTruncated, n, len(d.b)))
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) byte1() byte {
	b := d.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

// DecodeMessage decodes one Message of at most maxBytes bytes (maxBytes <= 0
// means no limit). It never panics. Errors wrap ErrTooLarge, ErrTruncated,
// ErrUnknownVersion or ErrMalformed. The returned Message aliases b.
func DecodeMessage(b []byte, maxBytes int) (Message, error) {
	var m Message
	if maxBytes > 0 && len(b) > maxBytes {
		return m, fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(b), maxBytes)
	}
	if len(b) < 2 {
		return m, fmt.Errorf("%w: %d-byte header", ErrTruncated, len(b))
	}
	if b[0] != Version {
		return m, fmt.Errorf("%w: %d", ErrUnknownVersion, b[0])
	}
	if b[1]&^(flagMore|flagFin) != 0 {
		return m, fmt.Errorf("%w: flags %#x", ErrMalformed, b[1])
	}
	m.More, m.Fin = b[1]&flagMore != 0, b[1]&flagFin != 0
	d := &decoder{b: b[2:]}
	if n := d.count(18); n > 0 {
		m.Roots = make([]Root, n)
		for i := range m.Roots {
			r := &m.Roots[i]
			r.Partition = d.u32()
			r.Count = d.uvarint()
			copy(r.Hash[:], d.bytes(16))
		}
	}
	if n := d.count(3); n > 0 {
		m.Records = make([]Record, n)
		for i := range m.Records {
			r := &m.Records[i]
			r.Partition = d.u32()
			kl := d.uvarint()
			if kl > MaxKeyBytes {
				d.fail(fmt.Errorf("%w: key of %d bytes", ErrMalformed, kl))
			}
			r.Key = d.bytes(kl)
			r.State = d.bytes(d.uvarint())
		}
	}
	if n := d.count(1); n > 0 {
		m.Replies = make([]Reply, n)
		for i := range m.Replies {
			m.Replies[i] = d.reply()
		}
	}
	if n := d.count(1); n > 0 {
		m.Items = make([]Item, n)
		for i := range m.Items {
			m.Items[i] = d.item()
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b)))
	}
	if d.err != nil {
		return Message{}, d.err
	}
	return m, nil
}

func (d *decoder) reply() Reply {
	h := d.uvarint()
	r := Reply{Kind: ReplyKind(h & 3)}
	payload := h >> 2
	switch r.Kind {
	case ReplyRoot:
		if payload > uint64(RootNotHeld) {
			d.fail(fmt.Errorf("%w: root status %d", ErrMalformed, payload))
		}
		r.Status = RootStatus(payload)
		return r
	case ReplyHashes, ReplyList:
		if payload > uint64(8*len(d.b)) {
			d.fail(fmt.Errorf("%w: bitmap of %d bits", ErrTruncated, payload))
			return r
		}
		r.NBits = int(payload)
		r.Bits = d.bytes(uint64(r.NBits+7) / 8)
		if r.Kind == ReplyHashes {
			c := d.bytes(2)
			if c != nil {
				r.Check = binary.LittleEndian.Uint16(c)
			}
		}
	default:
		d.fail(fmt.Errorf("%w: reply kind 3", ErrMalformed))
		return r
	}
	if d.err == nil {
		if err := checkReply(r); err != nil {
			d.fail(err)
		}
	}
	return r
}

func (d *decoder) item() Item {
	h := d.byte1()
	it := Item{Kind: ItemKind(h & 3), Explicit: h&itemExplicit != 0, Window: h >> 3 & 3}
	if it.Kind == ItemHashes {
		it.Fanout = h>>5 + 1
	} else if h>>5 != 0 {
		d.fail(fmt.Errorf("%w: fanout bits on item kind %d", ErrMalformed, it.Kind))
	}
	if it.Explicit {
		it.Node.Partition = d.u32()
		it.Node.Depth = d.byte1()
		it.Node.Prefix = d.uvarint()
	}
	switch it.Kind {
	case ItemHashes:
		it.Hashes = d.bytes(1 << it.Fanout)
	case ItemList:
		if n := d.count(4); n > 0 {
			it.Fingerprints = make([]uint32, n)
			for i := range it.Fingerprints {
				if b := d.bytes(4); b != nil {
					it.Fingerprints[i] = binary.LittleEndian.Uint32(b)
				}
			}
		}
	}
	if d.err == nil {
		if err := checkItem(it); err != nil {
			d.fail(err)
		}
	}
	return it
}
