package backup

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"iter"

	"github.com/klauspost/compress/zstd"
)

// Sentinel errors. Decoding functions wrap them with %w and the detail, so
// match them with errors.Is.
var (
	// ErrCorrupt: the file is not a backup, or its bytes were changed (bad
	// magic, checksum mismatch, malformed record, data after the body).
	ErrCorrupt = errors.New("backup: corrupt file")
	// ErrTruncated: the file ends early.
	ErrTruncated = errors.New("backup: truncated file")
	// ErrVersion: the file was written by a format version this code does
	// not read.
	ErrVersion = errors.New("backup: unsupported format version")
	// ErrRecord: Write was given a record it cannot store (empty key, or a
	// key or state over the limits).
	ErrRecord = errors.New("backup: invalid record")
)

// Format constants. The header is written uncompressed so that a glance at
// the first bytes recognises a backup without a zstd tool.
const (
	Magic   = "GMBK"
	Version = 1

	// MaxKeyBytes and MaxStateBytes bound one record. They are far above the
	// node's defaults (1 KiB keys, 1 MiB values) so that a node configured
	// with larger limits can still be backed up, yet low enough that a
	// corrupted length field cannot make the reader allocate without bound.
	MaxKeyBytes   = 64 << 10
	MaxStateBytes = 64 << 20

	headerLen  = len(Magic) + 2      // magic, version byte, compression byte
	trailerLen = 8 + sha256.Size + 4 // record count, records SHA-256, file CRC-32C

	compressionZstd = 1
	tagRecord       = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is one key and its CRDT state in the crdt package's canonical
// encoding. The backup format does not interpret State.
type Record struct {
	Key   []byte
	State []byte
}

// Write writes a complete plain backup of recs to w; see WriteWith.
func Write(w io.Writer, recs iter.Seq2[Record, error]) (int, error) {
	return WriteWith(w, recs, WriteOptions{})
}

// WriteOptions tunes WriteWith. The zero value writes a plain backup.
type WriteOptions struct {
	// Key, when set, seals the backup under it (format version 2, see
	// seal.go); it must be KeyBytes long. Default nil: a plain backup
	// (version 1), whose values strings(1) can read.
	Key []byte
}

// WriteWith writes a complete backup of recs to w and returns the number
// of records written. If recs yields an error, WriteWith stops and returns
// it; what was written so far has no trailer and is refused by Verify, so
// a failed backup can never be mistaken for a complete one.
func WriteWith(w io.Writer, recs iter.Seq2[Record, error], opts WriteOptions) (int, error) {
	hdr := append([]byte(Magic), Version, compressionZstd)
	var aead cipher.AEAD
	if opts.Key != nil {
		var err error
		if aead, err = newAEAD(opts.Key); err != nil {
			return 0, err
		}
		hdr = append(append([]byte(Magic), VersionSealed, compressionZstd), sealHeader(opts.Key)...)
	}
	crc := crc32.New(castagnoli)
	fw := io.MultiWriter(w, crc) // every byte before the trailer
	if _, err := fw.Write(hdr); err != nil {
		return 0, err
	}
	body := io.Writer(fw)
	var sealer *sealWriter
	if aead != nil {
		sealer = &sealWriter{chunker: chunker{aead: aead, hdr: hdr}, w: fw}
		body = sealer
	}
	// Concurrency 1: a backup streams to one writer, and extra encoder
	// goroutines only cost memory on small edge devices.
	zw, err := zstd.NewWriter(body, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true))
	if err != nil {
		return 0, err
	}
	sum := sha256.New()
	count, err := writeRecords(zw, sum, recs)
	if err != nil {
		zw.Close() // releases the encoder; the output stays trailerless
		return count, err
	}
	if err := zw.Close(); err != nil {
		return count, err
	}
	if sealer != nil {
		if err := sealer.Close(); err != nil {
			return count, err
		}
	}
	trailer := binary.BigEndian.AppendUint64(nil, uint64(count))
	trailer = sum.Sum(trailer)
	trailer = binary.BigEndian.AppendUint32(trailer, crc.Sum32())
	if _, err := w.Write(trailer); err != nil {
		return count, err
	}
	return count, nil
}

func writeRecords(zw io.Writer, sum hash.Hash, recs iter.Seq2[Record, error]) (int, error) {
	bw := bufio.NewWriterSize(zw, 64<<10)
	out := io.MultiWriter(bw, sum)
	var buf []byte
	count := 0
	for rec, err := range recs {
		if err != nil {
			return count, err
		}
		if len(rec.Key) == 0 || len(rec.Key) > MaxKeyBytes || len(rec.State) > MaxStateBytes {
			return count, fmt.Errorf("%w: key of %d bytes, state of %d bytes", ErrRecord, len(rec.Key), len(rec.State))
		}
		buf = append(buf[:0], tagRecord)
		buf = binary.AppendUvarint(buf, uint64(len(rec.Key)))
		buf = append(buf, rec.Key...)
		buf = binary.AppendUvarint(buf, uint64(len(rec.State)))
		if _, err := out.Write(buf); err != nil {
			return count, err
		}
		if _, err := out.Write(rec.State); err != nil {
			return count, err
		}
		count++
	}
	return count, bw.Flush()
}

// Verify reads a whole plain backup from r and checks its framing, record
// count and checksums without keeping any record. It returns the record
// count. A sealed backup needs VerifyWith and its key (else ErrSealed).
func Verify(r io.Reader) (int, error) {
	return decode(r, nil, nil)
}

// Check is Verify for a tool that holds no key (meshctl): a plain backup is
// verified in full; of a sealed one, the framing, the chunk structure and
// the file checksum, which catch a truncated or damaged copy, but not a
// forged one (only the key can tell). It returns the record count (the
// trailer's, for a sealed backup).
func Check(r io.Reader) (int, error) {
	return decodeFile(r, nil, nil, true)
}

// VerifyWith is Verify for a backup that may be sealed under key (nil:
// plain backups only). A plain backup verifies whatever the key.
func VerifyWith(r io.Reader, key []byte) (int, error) {
	return decode(r, key, nil)
}

// ReadWith is Read for a backup that may be sealed under key.
func ReadWith(r io.Reader, key []byte, fn func(Record) error) error {
	if fn == nil {
		fn = func(Record) error { return nil }
	}
	_, err := decode(r, key, fn)
	return err
}

// Read decodes a backup from r and calls fn for each record, in file order.
// Each Record's slices are freshly allocated and may be kept.
//
// Read streams: fn sees records before the trailer has been checked, so a
// corrupted file can deliver some records and then fail. Callers that must
// change nothing on a bad file run Verify first (Restore does). An error
// from fn stops Read and is returned as is.
func Read(r io.Reader, fn func(Record) error) error {
	if fn == nil {
		fn = func(Record) error { return nil }
	}
	_, err := decode(r, nil, fn)
	return err
}

// decode is the one decoder behind Verify and Read; fn nil means verify
// only, key nil that a sealed backup is refused.
func decode(r io.Reader, key []byte, fn func(Record) error) (int, error) {
	return decodeFile(r, key, fn, false)
}

// decodeFile is decode; framing, for a sealed backup read without its key,
// checks what can be checked without opening it (see Check).
func decodeFile(r io.Reader, key []byte, fn func(Record) error, framing bool) (int, error) {
	// The header is read before the holdback so that a short foreign file
	// is called what it is (bad magic) rather than truncated.
	hb := &holdback{r: r, keep: trailerLen, crc: crc32.New(castagnoli)}
	var hdr [headerLen]byte
	n, err := io.ReadFull(r, hdr[:])
	hb.crc.Write(hdr[:n])
	if err != nil {
		m := min(n, len(Magic))
		if string(hdr[:m]) != Magic[:m] {
			return 0, fmt.Errorf("%w: not a gossipmesh backup (bad magic)", ErrCorrupt)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, readErr("header", err)
		}
		return 0, fmt.Errorf("backup: reading input: %w", err)
	}
	if string(hdr[:len(Magic)]) != Magic {
		return 0, fmt.Errorf("%w: not a gossipmesh backup (bad magic)", ErrCorrupt)
	}
	if hdr[4] != Version && hdr[4] != VersionSealed {
		return 0, fmt.Errorf("%w: version %d, this build reads %d and %d", ErrVersion, hdr[4], Version, VersionSealed)
	}
	if hdr[5] != compressionZstd {
		return 0, fmt.Errorf("%w: unknown compression %d", ErrCorrupt, hdr[5])
	}
	body := io.Reader(hb)
	if hdr[4] == VersionSealed {
		if framing && key == nil {
			return checkSealedFraming(r, hb)
		}
		if body, err = openBody(r, hb, hdr[:], key); err != nil {
			return 0, err
		}
	}
	// The memory cap keeps a hostile window size from allocating without
	// bound; it is well above what our encoder uses.
	zr, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer zr.Close()
	d := &decoder{r: bufio.NewReaderSize(zr, 64<<10), sum: sha256.New()}
	count, err := d.body(hb, fn)
	if hb.err != nil {
		// The input itself failed (network, disk, size limit): that says
		// nothing about the file, so do not call it corrupt.
		return count, fmt.Errorf("backup: reading input: %w", hb.err)
	}
	return count, err
}

func (d *decoder) body(hb *holdback, fn func(Record) error) (int, error) {
	count, err := d.records(fn)
	if err != nil {
		return count, err
	}
	// zstd stops at the end of its last frame; anything it left unread
	// before the trailer is foreign data.
	if n, err := io.Copy(io.Discard, hb); err != nil {
		return count, readErr("end of body", err)
	} else if n > 0 {
		return count, fmt.Errorf("%w: %d unexpected bytes after the body", ErrCorrupt, n)
	}
	return count, d.checkTrailer(hb, count)
}

// readErr maps a read error to a sentinel: running out of input is
// truncation, anything the zstd layer reports (bad block, CRC mismatch) is
// corruption.
func readErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: file ends in %s", ErrTruncated, what)
	}
	if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTruncated) {
		return err
	}
	return fmt.Errorf("%w: in %s: %v", ErrCorrupt, what, err)
}

type decoder struct {
	r   *bufio.Reader
	sum hash.Hash
}

func (d *decoder) records(fn func(Record) error) (int, error) {
	count := 0
	for {
		tag, err := d.r.ReadByte()
		if errors.Is(err, io.EOF) {
			return count, nil // a clean end of the zstd stream ends the records
		}
		if err != nil {
			return count, readErr("record tag", err)
		}
		if tag != tagRecord {
			return count, fmt.Errorf("%w: record %d: bad tag %#x", ErrCorrupt, count, tag)
		}
		d.sum.Write([]byte{tag})
		key, err := d.field("key", MaxKeyBytes)
		if err != nil {
			return count, err
		}
		if len(key) == 0 {
			return count, fmt.Errorf("%w: record %d: empty key", ErrCorrupt, count)
		}
		state, err := d.field("state", MaxStateBytes)
		if err != nil {
			return count, err
		}
		if fn != nil {
			if err := fn(Record{Key: key, State: state}); err != nil {
				return count, err
			}
		}
		count++
	}
}

// field reads one uvarint-length-prefixed byte string, adding it to d.sum.
func (d *decoder) field(what string, limit int) ([]byte, error) {
	n, err := binary.ReadUvarint(d.r)
	if err != nil {
		return nil, readErr(what+" length", err)
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("%w: %s length %d over limit %d", ErrCorrupt, what, n, limit)
	}
	d.sum.Write(binary.AppendUvarint(nil, n))
	// Grow with the data actually read rather than trusting the length
	// field, so a corrupted length costs no more memory than the file holds.
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, d.r, int64(n)); err != nil {
		return nil, readErr(what, err)
	}
	d.sum.Write(buf.Bytes())
	if buf.Len() == 0 {
		return []byte{}, nil
	}
	return buf.Bytes(), nil
}

func (d *decoder) checkTrailer(hb *holdback, count int) error {
	t := hb.pend
	if len(t) != trailerLen {
		return fmt.Errorf("%w: file ends in the trailer", ErrTruncated)
	}
	if got := binary.BigEndian.Uint32(t[8+sha256.Size:]); got != hb.crc.Sum32() {
		return fmt.Errorf("%w: file checksum mismatch", ErrCorrupt)
	}
	if n := binary.BigEndian.Uint64(t); n != uint64(count) {
		return fmt.Errorf("%w: trailer says %d records, file holds %d", ErrCorrupt, n, count)
	}
	if !bytes.Equal(d.sum.Sum(nil), t[8:8+sha256.Size]) {
		return fmt.Errorf("%w: records checksum mismatch", ErrCorrupt)
	}
	return nil
}

// holdback passes r through but always keeps the last keep bytes back, so
// the zstd decoder never sees the trailer and the trailer needs no length
// field. It also checksums the bytes it passes.
type holdback struct {
	r    io.Reader
	keep int
	crc  hash.Hash32
	pend []byte // read from r, not yet passed on; ends with the trailer
	eof  bool
	err  error
}

func (h *holdback) Read(p []byte) (int, error) {
	for len(h.pend) <= h.keep && !h.eof {
		if cap(h.pend)-len(h.pend) < 32<<10 {
			h.pend = append(make([]byte, 0, len(h.pend)+64<<10), h.pend...)
		}
		n, err := h.r.Read(h.pend[len(h.pend):cap(h.pend)])
		h.pend = h.pend[:len(h.pend)+n]
		if err != nil {
			h.eof = true
			if !errors.Is(err, io.EOF) {
				h.err = err
			}
		}
	}
	avail := len(h.pend) - h.keep
	if avail <= 0 {
		if h.err != nil {
			return 0, h.err
		}
		return 0, io.EOF
	}
	n := copy(p, h.pend[:avail])
	h.crc.Write(h.pend[:n])
	h.pend = h.pend[n:]
	return n, nil
}
