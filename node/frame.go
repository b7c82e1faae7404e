package node

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/libp2p/go-libp2p/core/network"
)

// Sync frames on a stream: uvarint length, then a flag byte and the payload.
// The length is checked against the limit before anything is allocated, so
// a peer claiming a gigabyte frame costs us nothing.
const (
	frameRaw  = 0
	frameZstd = 1
	// frameChunk is the most read ahead of the bytes that have arrived.
	frameChunk = 64 << 10
	// zstdWindow is the compression window. With the default (8 MiB)
	// every stream's encoder keeps 8 MiB of history; a frame's records
	// that repeat each other are mostly near each other.
	zstdWindow = 1 << 20
)

// ErrBadFrame is returned for a sync frame that is oversized or malformed.
var ErrBadFrame = errors.New("node: malformed sync frame")

// errFrameTooLarge is the ErrBadFrame of a frame over its protocol's limit.
var errFrameTooLarge = errors.New("node: frame over its limit")

// ErrFrameRefused: the memory for a large frame could not be reserved in
// the stream's resource scope (the peer's, the protocol's or the node's
// budget is spent), so the frame was refused unread. It is not held
// against the peer: the budget may be spent by others.
var ErrFrameRefused = errors.New("node: frame refused: memory budget spent")

// ErrStalled: a write made no progress for Config.SyncStallTimeout; the
// peer does not read, and the stream is cut.
var ErrStalled = errors.New("node: peer stopped reading")

type framer struct {
	r        *bufio.Reader
	w        io.Writer
	maxFrame int
	compress int // payloads at least this long are compressed; 0 disables
	dec      *zstd.Decoder
	// enc is made at the first frame worth compressing. It belongs to the
	// framer, not to the package: a shared encoder keeps goroutines and
	// channels of its first user (and testing/synctest refuses a channel
	// shared between bubbles).
	enc      *zstd.Encoder
	sent     uint64
	received uint64

	// Set on a libp2p stream (newStreamFramer).
	mem    network.ResourceScope // where a large frame's memory is reserved
	held   int                   // bytes reserved for the last frame read
	stream network.Stream
	end    time.Time     // the stream's own deadline
	stall  time.Duration // a write or a handshake read with no progress for this long fails
}

func newFramer(rw io.ReadWriter, maxFrame, compressAbove int) (*framer, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(maxFrame)), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, err
	}
	return &framer{r: bufio.NewReader(rw), w: rw, maxFrame: maxFrame, compress: compressAbove, dec: dec}, nil
}

// newStreamFramer is a framer on a libp2p stream that ends at end: the
// memory of every frame larger than frameChunk is reserved in the stream's
// resource scope before it is read (so the resource manager's limits
// bound it), and a write that makes no progress for stall fails with
// ErrStalled.
func newStreamFramer(s network.Stream, maxFrame, compressAbove int, end time.Time, stall time.Duration) (*framer, error) {
	_ = s.SetDeadline(end)
	f, err := newFramer(s, maxFrame, compressAbove)
	if err != nil {
		return nil, err
	}
	f.mem, f.stream, f.end, f.stall = s.Scope(), s, end, stall
	return f, nil
}

func (f *framer) close() {
	f.release()
	f.dec.Close()
	if f.enc != nil {
		_ = f.enc.Close()
	}
}

// reserve accounts n bytes of a frame about to be read; small frames cost
// at most a chunk and are not reserved. The reservation lasts until the
// next read or close: the frame's bytes are live until then.
func (f *framer) reserve(n int) error {
	if f.mem == nil || n <= frameChunk {
		return nil
	}
	if err := f.mem.ReserveMemory(n, network.ReservationPriorityMedium); err != nil {
		return fmt.Errorf("%w: %d bytes: %v", ErrFrameRefused, n, err)
	}
	f.held += n
	return nil
}

func (f *framer) release() {
	if f.held > 0 {
		f.mem.ReleaseMemory(f.held)
		f.held = 0
	}
}

// deadline is when a write (or handshake read) starting now must have made
// progress: stall from now, but never past the stream's end.
func (f *framer) deadline() time.Time {
	d := time.Now().Add(f.stall)
	if !f.end.IsZero() && f.end.Before(d) {
		return f.end
	}
	return d
}

// writeAll writes b a chunk at a time, each under the stall deadline, so a
// slow link that keeps moving is not cut and a peer that stops reading is.
func (f *framer) writeAll(b []byte) error {
	for len(b) > 0 {
		n := min(len(b), frameChunk)
		if f.stream != nil && f.stall > 0 {
			_ = f.stream.SetWriteDeadline(f.deadline())
		}
		k, err := f.w.Write(b[:n])
		f.sent += uint64(k)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && (f.end.IsZero() || time.Now().Before(f.end)) {
				return fmt.Errorf("%w: no progress for %v: %v", ErrStalled, f.stall, err)
			}
			return err
		}
		b = b[n:]
	}
	return nil
}

// readWithin reads a frame of at most limit bytes that must arrive within
// the stall deadline (a handshake: a peer that opens a stream and stalls
// holds its slot that long, not the whole session).
func (f *framer) readWithin(limit int) ([]byte, error) {
	if f.stream != nil && f.stall > 0 {
		_ = f.stream.SetReadDeadline(f.deadline())
		defer func() { _ = f.stream.SetReadDeadline(f.end) }()
	}
	return f.readMax(limit)
}

func (f *framer) write(payload []byte) error {
	fr, err := f.pack(payload)
	if err != nil {
		return err
	}
	return f.send(fr)
}

// wireFrame is a frame ready for the wire: its header, and its body (the
// payload, compressed if that made it smaller).
type wireFrame struct{ head, body []byte }

// pack makes a frame of payload. A sender may pack on one goroutine and
// send on another, not both on two at once.
func (f *framer) pack(payload []byte) (wireFrame, error) {
	flag := byte(frameRaw)
	if f.compress > 0 && len(payload) >= f.compress {
		if f.enc == nil {
			var err error
			if f.enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
				zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true)); err != nil {
				return wireFrame{}, err
			}
		}
		if f.worthCompressing(payload) {
			if z := f.enc.EncodeAll(payload, nil); len(z) < len(payload) {
				payload, flag = z, frameZstd
			}
		}
	}
	head := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+1), uint64(len(payload)+1))
	head = append(head, flag)
	if len(payload) <= frameChunk { // one write for a small frame
		return wireFrame{head: append(head, payload...)}, nil
	}
	return wireFrame{head: head, body: payload}, nil
}

// worthCompressing tries a large payload's first chunk: if that does not
// shrink by an eighth, the payload (encrypted or compressed values) is
// sent as it is, without paying for a full attempt, in time and in a
// frame-sized buffer.
func (f *framer) worthCompressing(payload []byte) bool {
	if len(payload) <= 2*frameChunk {
		return true
	}
	sample := payload[:frameChunk]
	return len(f.enc.EncodeAll(sample, nil)) < len(sample)-len(sample)/8
}

// send writes a frame made by pack.
func (f *framer) send(fr wireFrame) error {
	if err := f.writeAll(fr.head); err != nil {
		return err
	}
	return f.writeAll(fr.body)
}

// read reads a frame of at most the framer's limit.
func (f *framer) read() ([]byte, error) { return f.readMax(f.maxFrame) }

// readMax reads a frame of at most limit bytes (and no more than the
// framer's limit), raw or once inflated.
func (f *framer) readMax(limit int) ([]byte, error) {
	f.release() // the previous frame is done with
	limit = min(limit, f.maxFrame)
	size, err := readLength(f.r)
	if err != nil {
		return nil, err
	}
	if size == 0 || size > uint64(limit)+1 {
		return nil, fmt.Errorf("%w: %w: frame of %d bytes, limit %d", ErrBadFrame, errFrameTooLarge, size, limit)
	}
	if err := f.reserve(int(size)); err != nil {
		return nil, err
	}
	// Memory follows the bytes that arrive, not the length claimed: a peer
	// that announces a large frame and stalls holds at most one chunk.
	var body bytes.Buffer
	body.Grow(int(min(size, frameChunk)))
	if _, err := io.CopyN(&body, f.r, int64(size)); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		// Not ErrBadFrame: a dropped or stalled stream is the network's
		// fault as often as the peer's, and is not counted against it.
		return nil, fmt.Errorf("node: sync frame body: %w", err)
	}
	buf := body.Bytes()
	f.received += uint64(len(binary.AppendUvarint(nil, size))) + size
	switch buf[0] {
	case frameRaw:
		return buf[1:], nil
	case frameZstd:
		return f.inflate(buf[1:], limit)
	default:
		return nil, fmt.Errorf("%w: unknown flag %d", ErrBadFrame, buf[0])
	}
}

// inflate decompresses a frame whose zstd header declares its size (as
// EncodeAll writes it): the size is checked against limit and reserved
// before anything is decoded, and decoding stops there.
func (f *framer) inflate(z []byte, limit int) ([]byte, error) {
	var h zstd.Header
	if err := h.Decode(z); err != nil || !h.HasFCS {
		return nil, fmt.Errorf("%w: zstd frame without its size", ErrBadFrame)
	}
	if h.FrameContentSize > uint64(limit) {
		return nil, fmt.Errorf("%w: %w: frame inflates to %d bytes, limit %d", ErrBadFrame, errFrameTooLarge, h.FrameContentSize, limit)
	}
	if err := f.reserve(int(h.FrameContentSize)); err != nil {
		return nil, err
	}
	out, err := f.dec.DecodeAll(z, make([]byte, 0, h.FrameContentSize))
	if err != nil {
		return nil, fmt.Errorf("%w: zstd: %v", ErrBadFrame, err)
	}
	return out, nil
}

// readLength reads a frame's uvarint length. Unlike binary.ReadUvarint it
// reports an overlong varint as ErrBadFrame, so that peer misbehaviour is
// told apart from a dropped stream (whose error passes through as is).
func readLength(r io.ByteReader) (uint64, error) {
	var x uint64
	var shift uint
	for i := range binary.MaxVarintLen64 {
		b, err := r.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			return x | uint64(b)<<shift, nil
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, fmt.Errorf("%w: frame length varint overflows", ErrBadFrame)
}
