package node

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Sync frames on a stream: uvarint length, then a flag byte and the payload.
// The length is checked against the limit before anything is allocated, so
// a peer claiming a gigabyte frame costs us nothing.
const (
	frameRaw  = 0
	frameZstd = 1
	// frameChunk is the most read ahead of the bytes that have arrived.
	frameChunk = 64 << 10
)

// ErrBadFrame is returned for a sync frame that is oversized or malformed.
var ErrBadFrame = errors.New("node: malformed sync frame")

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
}

func newFramer(rw io.ReadWriter, maxFrame, compressAbove int) (*framer, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(maxFrame)))
	if err != nil {
		return nil, err
	}
	return &framer{r: bufio.NewReader(rw), w: rw, maxFrame: maxFrame, compress: compressAbove, dec: dec}, nil
}

func (f *framer) close() {
	f.dec.Close()
	if f.enc != nil {
		_ = f.enc.Close()
	}
}

func (f *framer) write(payload []byte) error {
	flag := byte(frameRaw)
	if f.compress > 0 && len(payload) >= f.compress {
		if f.enc == nil {
			var err error
			if f.enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1)); err != nil {
				return err
			}
		}
		if z := f.enc.EncodeAll(payload, nil); len(z) < len(payload) {
			payload, flag = z, frameZstd
		}
	}
	buf := binary.AppendUvarint(make([]byte, 0, len(payload)+11), uint64(len(payload)+1))
	buf = append(buf, flag)
	buf = append(buf, payload...)
	_, err := f.w.Write(buf)
	f.sent += uint64(len(buf))
	return err
}

func (f *framer) read() ([]byte, error) {
	size, err := readLength(f.r)
	if err != nil {
		return nil, err
	}
	if size == 0 || size > uint64(f.maxFrame)+1 {
		return nil, fmt.Errorf("%w: frame of %d bytes, limit %d", ErrBadFrame, size, f.maxFrame)
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
		out, err := f.dec.DecodeAll(buf[1:], nil)
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrBadFrame, err)
		}
		if len(out) > f.maxFrame {
			return nil, fmt.Errorf("%w: frame inflates past %d bytes", ErrBadFrame, f.maxFrame)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%w: unknown flag %d", ErrBadFrame, buf[0])
	}
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
