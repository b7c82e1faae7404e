// Package backup defines gossipmesh's backup file format and its streaming
// encoder, verifier and restorer. It knows nothing of nodes: a record is a
// key and an opaque CRDT state, which the node exports and merges.
//
// # Format (version 1)
//
//	header   "GMBK" | version byte (1) | compression byte (1 = zstd)
//	body     one zstd stream (with frame CRC) of records:
//	           0x01 | uvarint len | key | uvarint len | state
//	trailer  uint64 record count | SHA-256 of the uncompressed record bytes |
//	         CRC-32C of every file byte before the trailer (all big-endian)
//
// The SHA-256 covers the records themselves, so it catches damage whatever
// the compression layer makes of it; the CRC over the raw bytes catches the
// flips that zstd would decode to the same records anyway (padding bits), so
// any changed byte is refused. The trailer's presence proves the writer
// finished. The trailer has a fixed size, so the reader finds it by holding
// back the last bytes of the stream.
//
// # Sealed backups (version 2)
//
// WriteWith with a key seals the compressed body in authenticated chunks
// (XChaCha20-Poly1305; seal.go has the layout), so the file shows nothing
// of the keys and values; VerifyWith, ReadWith and RestoreOptions.Key open
// it, and without the key it is refused with ErrSealed, under another with
// ErrWrongKey. A node with an encrypted store seals its backups under a key
// derived from its store key.
//
// Restore verifies the whole input before merging anything, so a truncated
// or corrupted file changes nothing; since restore is a CRDT merge, restoring
// the same file twice, or into a live mesh, is safe.
//
// # Example
//
//	var buf bytes.Buffer
//	recs := func(yield func(backup.Record, error) bool) {
//		yield(backup.Record{Key: []byte("k"), State: state}, nil)
//	}
//	if _, err := backup.Write(&buf, recs); err != nil { ... }
//	n, err := backup.Restore(&buf, backup.RestoreOptions{}, func(batch []backup.Record) error {
//		return mergeIntoNode(batch)
//	})
package backup
