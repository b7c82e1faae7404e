package backup

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// Sealed backups (format version 2). With a key, the compressed body is
// cut into chunks sealed with XChaCha20-Poly1305, so nothing of the keys
// or values can be read from the file without the key:
//
//	header   "GMBK" | version (2) | compression (1) | key ID (4) | nonce prefix (16)
//	body     chunks: final flag (1) | uint32 length | ciphertext+tag,
//	         each holding up to 64 KiB of the zstd stream; the last has flag 1
//	trailer  as in version 1
//
// A chunk's nonce is the prefix and its index (big-endian uint64), and its
// additional data the whole header and its flag, so chunks cannot be
// reordered, dropped, moved to another file or cut short without the
// open failing. The key ID (a hash of the key) tells a wrong key apart from
// a damaged file.
const (
	VersionSealed = 2

	KeyBytes        = chacha20poly1305.KeySize
	sealChunk       = 64 << 10
	sealPrefixLen   = chacha20poly1305.NonceSizeX - 8
	sealHeaderExtra = 4 + sealPrefixLen // key ID, nonce prefix
	chunkHeaderLen  = 1 + 4             // final flag, ciphertext length
)

var (
	// ErrSealed: the backup is sealed and no key was given to read it.
	ErrSealed = errors.New("backup: sealed backup, and no key to open it")
	// ErrWrongKey: the backup is sealed under another key.
	ErrWrongKey = errors.New("backup: sealed under another key")
	// ErrKey: a key that is not KeyBytes long.
	ErrKey = errors.New("backup: key must be 32 bytes")
)

func keyID(key []byte) [4]byte {
	sum := sha256.Sum256(append([]byte("gossipmesh/backup/key-id/v1\x00"), key...))
	return [4]byte(sum[:4])
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeyBytes {
		return nil, ErrKey
	}
	return chacha20poly1305.NewX(key)
}

// sealHeader returns the version 2 header fields after the compression
// byte: the key ID and a fresh nonce prefix.
func sealHeader(key []byte) []byte {
	id := keyID(key)
	out := append([]byte{}, id[:]...)
	prefix := make([]byte, sealPrefixLen)
	if _, err := rand.Read(prefix); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return append(out, prefix...)
}

// chunker holds what both directions of a sealed body share.
type chunker struct {
	aead  cipher.AEAD
	hdr   []byte // the whole file header: additional data of every chunk
	index uint64
}

func (c *chunker) nonce() []byte {
	prefix := c.hdr[len(c.hdr)-sealPrefixLen:]
	return binary.BigEndian.AppendUint64(append([]byte{}, prefix...), c.index)
}

func (c *chunker) aad(final byte) []byte {
	return append(append([]byte{}, c.hdr...), final)
}

// sealWriter seals what is written to it, chunk by chunk, onto w.
type sealWriter struct {
	chunker
	w   io.Writer
	buf []byte
}

func (s *sealWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		take := min(len(p), sealChunk-len(s.buf))
		s.buf, p = append(s.buf, p[:take]...), p[take:]
		if len(s.buf) == sealChunk {
			if err := s.flush(0); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// Close writes the final chunk (perhaps empty); w stays open.
func (s *sealWriter) Close() error { return s.flush(1) }

func (s *sealWriter) flush(final byte) error {
	ct := s.aead.Seal(nil, s.nonce(), s.buf, s.aad(final))
	s.index++
	s.buf = s.buf[:0]
	frame := binary.BigEndian.AppendUint32([]byte{final}, uint32(len(ct)))
	if _, err := s.w.Write(frame); err != nil {
		return err
	}
	_, err := s.w.Write(ct)
	return err
}

// openReader opens a sealed body read from r; it ends after the final
// chunk, and a body that stops before it is truncated.
type openReader struct {
	chunker
	r    io.Reader
	out  []byte
	done bool
}

func (o *openReader) Read(p []byte) (int, error) {
	for len(o.out) == 0 {
		if o.done {
			return 0, io.EOF
		}
		if err := o.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, o.out)
	o.out = o.out[n:]
	return n, nil
}

func (o *openReader) next() error {
	var h [chunkHeaderLen]byte
	if _, err := io.ReadFull(o.r, h[:]); err != nil {
		return readErr("sealed chunk header", eofUnexpected(err))
	}
	final, size := h[0], binary.BigEndian.Uint32(h[1:])
	if final > 1 || size < uint32(o.aead.Overhead()) || size > sealChunk+uint32(o.aead.Overhead()) {
		return fmt.Errorf("%w: sealed chunk %d: bad header", ErrCorrupt, o.index)
	}
	ct := make([]byte, size)
	if _, err := io.ReadFull(o.r, ct); err != nil {
		return readErr("sealed chunk", eofUnexpected(err))
	}
	plain, err := o.aead.Open(nil, o.nonce(), ct, o.aad(final))
	if err != nil {
		return fmt.Errorf("%w: sealed chunk %d fails authentication", ErrCorrupt, o.index)
	}
	o.index++
	o.out, o.done = plain, final == 1
	return nil
}

// eofUnexpected: within a body that has not reached its final chunk, a
// clean EOF is still truncation.
func eofUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// openBody reads a sealed header's extra fields from r (before hb takes
// over the stream) and returns the reader of the opened body.
func openBody(r io.Reader, hb *holdback, hdr []byte, key []byte) (io.Reader, error) {
	extra := make([]byte, sealHeaderExtra)
	n, err := io.ReadFull(r, extra)
	hb.crc.Write(extra[:n])
	if err != nil {
		return nil, readErr("header", eofUnexpected(err))
	}
	if key == nil {
		return nil, ErrSealed
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if id := keyID(key); string(extra[:4]) != string(id[:]) {
		return nil, ErrWrongKey
	}
	full := append(append([]byte{}, hdr...), extra...)
	return &openReader{chunker: chunker{aead: aead, hdr: full}, r: hb}, nil
}

// checkSealedFraming walks a sealed body's chunk frames without opening
// them, then checks the trailer's file checksum and returns its count.
func checkSealedFraming(r io.Reader, hb *holdback) (int, error) {
	extra := make([]byte, sealHeaderExtra)
	n, err := io.ReadFull(r, extra)
	hb.crc.Write(extra[:n])
	if err != nil {
		return 0, readErr("header", eofUnexpected(err))
	}
	maxSize := uint32(sealChunk + chacha20poly1305.Overhead)
	for index := 0; ; index++ {
		var h [chunkHeaderLen]byte
		if _, err := io.ReadFull(hb, h[:]); err != nil {
			return 0, inputErr(hb, readErr("sealed chunk header", eofUnexpected(err)))
		}
		final, size := h[0], binary.BigEndian.Uint32(h[1:])
		if final > 1 || size < chacha20poly1305.Overhead || size > maxSize {
			return 0, fmt.Errorf("%w: sealed chunk %d: bad header", ErrCorrupt, index)
		}
		if _, err := io.CopyN(io.Discard, hb, int64(size)); err != nil {
			return 0, inputErr(hb, readErr("sealed chunk", eofUnexpected(err)))
		}
		if final == 1 {
			break
		}
	}
	if n, err := io.Copy(io.Discard, hb); err != nil {
		return 0, inputErr(hb, readErr("end of body", err))
	} else if n > 0 {
		return 0, fmt.Errorf("%w: %d unexpected bytes after the body", ErrCorrupt, n)
	}
	t := hb.pend
	if len(t) != trailerLen {
		return 0, fmt.Errorf("%w: file ends in the trailer", ErrTruncated)
	}
	if got := binary.BigEndian.Uint32(t[8+sha256.Size:]); got != hb.crc.Sum32() {
		return 0, fmt.Errorf("%w: file checksum mismatch", ErrCorrupt)
	}
	return int(binary.BigEndian.Uint64(t)), nil
}

// inputErr prefers the input's own failure, which says nothing about the
// file, to what it made of the file.
func inputErr(hb *holdback, err error) error {
	if hb.err != nil {
		return fmt.Errorf("backup: reading input: %w", hb.err)
	}
	return err
}
