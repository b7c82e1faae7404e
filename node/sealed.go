package node

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"golang.org/x/crypto/chacha20poly1305"
)

// Encryption at rest. With Config.EncryptionKeyFile every value the node
// stores is sealed with XChaCha20-Poly1305 by a datastore wrapper, so the
// rest of the node (Merkle digests, sync, backup) sees plaintext and works
// unchanged. Datastore keys stay in the clear: they are the hex of user
// keys, which the mesh gossips to its peers anyway.
//
// A sealed value is
//
//	version(1) keyID(4) nonce(24) ciphertext+tag
//
// The nonce is random per write: 192 bits make collisions negligible
// without a counter that would have to survive crashes. The additional data
// is the header and the datastore key, so a value moved to another key (or
// sealed under another key version) fails to open instead of being read.
// The key ID, a hash of the key, tells a wrong key apart from corruption.
//
// A canary sealed under canaryKey proves at start that the configured key
// is the store's key, before anything is read; it also marks the store as
// encrypted, so opening it without a key is refused rather than read as
// garbage.
const (
	sealVersion   = 1
	sealHeaderLen = 1 + 4 + chacha20poly1305.NonceSizeX
	sealOverhead  = sealHeaderLen + chacha20poly1305.Overhead
	canaryKey     = "/meta/seal-canary"
	canaryText    = "gossipmesh sealed store v1"
)

var (
	// ErrEncryptionKey: the key file is missing, unreadable or not 64 hex
	// characters.
	ErrEncryptionKey = errors.New("node: bad encryption key file")
	// ErrWrongEncryptionKey: the store was sealed under another key.
	ErrWrongEncryptionKey = errors.New("node: wrong encryption key for this store")
	// ErrStoreEncrypted: the store is sealed and no key is configured.
	ErrStoreEncrypted = errors.New("node: store is encrypted but no encryption key is configured")
	// ErrStoreNotEncrypted: a key is configured for a store that already
	// holds unencrypted data; restore a backup into a fresh store instead.
	ErrStoreNotEncrypted = errors.New("node: store holds unencrypted data")
	// ErrSealBroken: a stored value failed authentication (corruption or
	// tampering); it is never returned as data.
	ErrSealBroken = errors.New("node: stored value failed authentication")
)

// GenerateEncryptionKey returns a new random key in the key file format:
// 64 hex characters and a newline.
func GenerateEncryptionKey() []byte {
	var k [chacha20poly1305.KeySize]byte
	if _, err := rand.Read(k[:]); err != nil {
		panic(err)
	}
	return []byte(hex.EncodeToString(k[:]) + "\n")
}

func readEncryptionKey(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %v", ErrInvalidConfig, ErrEncryptionKey, err)
	}
	key, err := hex.DecodeString(string(bytes.TrimSpace(raw)))
	if err != nil || len(key) != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("%w: %w: %s must hold %d hex characters", ErrInvalidConfig, ErrEncryptionKey, path, 2*chacha20poly1305.KeySize)
	}
	return key, nil
}

// openSealedStore opens the configured store and, with an encryption key,
// wraps it so values are sealed; it checks the key against the store's
// canary before anything else reads it.
func openSealedStore(ctx context.Context, cfg *Config) (ds.Batching, bool, error) {
	store, own, err := openStore(cfg)
	if err != nil {
		return nil, false, err
	}
	fail := func(err error) (ds.Batching, bool, error) {
		if own {
			store.Close()
		}
		return nil, false, err
	}
	if cfg.EncryptionKeyFile == "" {
		has, err := store.Has(ctx, ds.NewKey(canaryKey))
		if err != nil {
			return fail(fmt.Errorf("%w: %v", ErrStore, err))
		}
		if has {
			return fail(fmt.Errorf("%w: set EncryptionKeyFile (meshd --encryption-key-file)", ErrStoreEncrypted))
		}
		return store, own, nil
	}
	key, err := readEncryptionKey(cfg.EncryptionKeyFile)
	if err != nil {
		return fail(err)
	}
	sealed, err := newSealedStore(store, key)
	if err != nil {
		return fail(err)
	}
	if err := sealed.checkCanary(ctx); err != nil {
		return fail(err)
	}
	return sealed, own, nil
}

// sealedStore seals values on their way into child and opens them on the
// way out.
type sealedStore struct {
	child     ds.Batching
	aead      cipher.AEAD
	keyID     [4]byte
	backupKey []byte // seals backups (BackupKey)
}

var _ ds.Batching = (*sealedStore)(nil)

func newSealedStore(child ds.Batching, key []byte) (*sealedStore, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %v", ErrInvalidConfig, ErrEncryptionKey, err)
	}
	s := &sealedStore{child: child, aead: aead}
	s.keyID = sealKeyID(key)
	s.backupKey = deriveBackupKey(key)
	return s, nil
}

// deriveBackupKey is the key backups of a sealed store are sealed under:
// derived from the store key, so one key file opens both, yet a backup key
// handed to a backup tool is not the store key.
func deriveBackupKey(storeKey []byte) []byte {
	sum := sha256.Sum256(append([]byte("gossipmesh/backup-key/v1\x00"), storeKey...))
	return sum[:]
}

// BackupKey is the key this node seals its backups under and opens sealed
// backups with: with Config.EncryptionKeyFile, one derived from the store
// key (a backup of an encrypted store is encrypted too); nil for a store
// kept in the clear, whose backups are plain.
func (n *Node) BackupKey() []byte {
	if s, ok := n.store.Batching.(*sealedStore); ok {
		return s.backupKey
	}
	return nil
}

func sealKeyID(key []byte) [4]byte {
	sum := sha256.Sum256(append([]byte("gossipmesh/seal/key-id/v1\x00"), key...))
	return [4]byte(sum[:4])
}

// checkCanary opens the canary, or writes it into a store that has none. A
// store with data but no canary was written in the clear.
func (s *sealedStore) checkCanary(ctx context.Context) error {
	k := ds.NewKey(canaryKey)
	v, err := s.Get(ctx, k)
	switch {
	case err == nil:
		if string(v) != canaryText {
			return fmt.Errorf("%w: canary holds %q", ErrSealBroken, v)
		}
		return nil
	case !errors.Is(err, ds.ErrNotFound):
		return err
	}
	res, err := s.child.Query(ctx, dsq.Query{KeysOnly: true, Limit: 1})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStore, err)
	}
	entries, err := res.Rest()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStore, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("%w: it cannot be encrypted in place; restore a backup into a fresh encrypted store", ErrStoreNotEncrypted)
	}
	if err := s.Put(ctx, k, []byte(canaryText)); err != nil {
		return err
	}
	return s.child.Sync(ctx, k)
}

func (s *sealedStore) aad(header []byte, key ds.Key) []byte {
	aad := make([]byte, 0, len("gossipmesh/seal/v1\x00")+len(header)+len(key.String()))
	aad = append(aad, "gossipmesh/seal/v1\x00"...)
	aad = append(aad, header...)
	return append(aad, key.String()...)
}

func (s *sealedStore) seal(key ds.Key, plain []byte) []byte {
	out := make([]byte, sealHeaderLen, sealOverhead+len(plain))
	out[0] = sealVersion
	copy(out[1:5], s.keyID[:])
	if _, err := rand.Read(out[5:sealHeaderLen]); err != nil {
		panic(err)
	}
	return s.aead.Seal(out, out[5:sealHeaderLen], plain, s.aad(out[:5], key))
}

func (s *sealedStore) open(key ds.Key, sealed []byte) ([]byte, error) {
	if len(sealed) < sealOverhead || sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: %s: not a sealed value", ErrSealBroken, key)
	}
	if id := [4]byte(sealed[1:5]); id != s.keyID {
		return nil, fmt.Errorf("%w: %s is sealed under key %x, the configured key is %x", ErrWrongEncryptionKey, key, id, s.keyID)
	}
	plain, err := s.aead.Open(nil, sealed[5:sealHeaderLen], sealed[sealHeaderLen:], s.aad(sealed[:5], key))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrSealBroken, key)
	}
	return plain, nil
}

func (s *sealedStore) Get(ctx context.Context, key ds.Key) ([]byte, error) {
	v, err := s.child.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return s.open(key, v)
}

func (s *sealedStore) Has(ctx context.Context, key ds.Key) (bool, error) {
	return s.child.Has(ctx, key)
}

func (s *sealedStore) GetSize(ctx context.Context, key ds.Key) (int, error) {
	n, err := s.child.GetSize(ctx, key)
	if err != nil {
		return n, err
	}
	return max(n-sealOverhead, 0), nil
}

func (s *sealedStore) Put(ctx context.Context, key ds.Key, value []byte) error {
	return s.child.Put(ctx, key, s.seal(key, value))
}

func (s *sealedStore) Delete(ctx context.Context, key ds.Key) error {
	return s.child.Delete(ctx, key)
}

func (s *sealedStore) Sync(ctx context.Context, prefix ds.Key) error {
	return s.child.Sync(ctx, prefix)
}

func (s *sealedStore) Close() error { return s.child.Close() }

// Query asks the child for the prefix only: filters and orders may look at
// values, which the child holds sealed, so they run here on plaintext.
func (s *sealedStore) Query(ctx context.Context, q dsq.Query) (dsq.Results, error) {
	inner := dsq.Query{Prefix: q.Prefix, KeysOnly: q.KeysOnly, ReturnExpirations: q.ReturnExpirations, ReturnsSizes: q.ReturnsSizes}
	res, err := s.child.Query(ctx, inner)
	if err != nil {
		return nil, err
	}
	opened := dsq.ResultsFromIterator(q, dsq.Iterator{
		Next: func() (dsq.Result, bool) {
			r, ok := res.NextSync()
			if !ok || r.Error != nil {
				return r, ok
			}
			if !q.KeysOnly {
				r.Value, r.Error = s.open(ds.RawKey(r.Key), r.Value)
				r.Size = len(r.Value)
			} else if r.Size > 0 {
				r.Size = max(r.Size-sealOverhead, 0)
			}
			return r, true
		},
		Close: res.Close,
	})
	naive := q
	naive.Prefix = "" // the child applied it
	return dsq.NaiveQueryApply(naive, opened), nil
}

func (s *sealedStore) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := s.child.Batch(ctx)
	if err != nil {
		return nil, err
	}
	return &sealedBatch{s: s, b: b}, nil
}

type sealedBatch struct {
	s *sealedStore
	b ds.Batch
}

func (b *sealedBatch) Put(ctx context.Context, key ds.Key, value []byte) error {
	return b.b.Put(ctx, key, b.s.seal(key, value))
}

func (b *sealedBatch) Delete(ctx context.Context, key ds.Key) error { return b.b.Delete(ctx, key) }
func (b *sealedBatch) Commit(ctx context.Context) error             { return b.b.Commit(ctx) }
