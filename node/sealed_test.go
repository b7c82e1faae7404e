package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
)

func keyFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.key")
	if err := os.WriteFile(path, GenerateEncryptionKey(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func diskConfig(dir, key string) Config {
	cfg := testConfig()
	cfg.Memory = false
	cfg.DataDir = dir
	cfg.EncryptionKeyFile = key
	return cfg
}

// secret is a value no compressor or encoder would rewrite beyond
// recognition, so finding it in the files means it is stored in the clear.
func secret(t testing.TB) []byte {
	var b [16]byte
	rand.Read(b[:])
	return []byte("TOPSECRET-" + hex.EncodeToString(b[:]))
}

func filesContain(t testing.TB, dir string, needle []byte) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found = found || bytes.Contains(b, needle)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestEncryptedStoreRefusesTheWrongKey(t *testing.T) {
	ctx := context.Background()
	dir, key := t.TempDir(), keyFile(t)
	value := secret(t)
	n := startNode(t, diskConfig(dir, key))
	acked := writeKeys(t, n, "k", 50)
	if err := n.Put(ctx, []byte("secret"), value); err != nil {
		t.Fatal(err)
	}
	acked["secret"] = string(value)
	n.Close()

	if filesContain(t, dir, value) {
		t.Fatal("plaintext value found in the store's files")
	}
	for name, c := range map[string]struct {
		key  string
		want error
	}{
		"another key": {keyFile(t), ErrWrongEncryptionKey},
		"no key":      {"", ErrStoreEncrypted},
	} {
		if _, err := New(ctx, diskConfig(dir, c.key)); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("short\n"), 0o600)
	if _, err := New(ctx, diskConfig(dir, bad)); !errors.Is(err, ErrEncryptionKey) || !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("malformed key file: got %v, want ErrEncryptionKey", err)
	}

	// The right key reads everything back, trees rebuilt from plaintext.
	n = startNode(t, diskConfig(dir, key))
	if err := hasAll(ctx, n, acked); err != nil {
		t.Fatal(err)
	}
}

func TestPlaintextStoreIsNotEncryptedInPlace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n := startNode(t, diskConfig(dir, ""))
	value := secret(t)
	if err := n.Put(ctx, []byte("k"), value); err != nil {
		t.Fatal(err)
	}
	n.Close()
	if !filesContain(t, dir, value) {
		t.Fatal("control: the plaintext value is not in the files, so the encrypted test proves nothing")
	}
	if _, err := New(ctx, diskConfig(dir, keyFile(t))); !errors.Is(err, ErrStoreNotEncrypted) {
		t.Fatalf("got %v, want ErrStoreNotEncrypted", err)
	}
}

func TestSealedValuesCannotBeSwappedOrTampered(t *testing.T) {
	ctx := context.Background()
	child := dssync.MutexWrap(ds.NewMapDatastore())
	key, _ := hex.DecodeString(string(bytes.TrimSpace(GenerateEncryptionKey())))
	s, err := newSealedStore(child, key)
	if err != nil {
		t.Fatal(err)
	}
	a, b := ds.NewKey("/k/61"), ds.NewKey("/k/62")
	s.Put(ctx, a, []byte("alpha"))
	s.Put(ctx, b, []byte("beta"))
	rawA, _ := child.Get(ctx, a)
	rawB, _ := child.Get(ctx, b)
	child.Put(ctx, a, rawB)
	if _, err := s.Get(ctx, a); !errors.Is(err, ErrSealBroken) {
		t.Fatalf("swapped value: got %v, want ErrSealBroken", err)
	}
	rawA[len(rawA)-1] ^= 1
	child.Put(ctx, a, rawA)
	if _, err := s.Get(ctx, a); !errors.Is(err, ErrSealBroken) {
		t.Fatalf("tampered value: got %v, want ErrSealBroken", err)
	}
	if v, err := s.Get(ctx, b); err != nil || string(v) != "beta" {
		t.Fatalf("untouched value: %q %v", v, err)
	}
}

func TestEncryptedNodeSyncsWithPlainNode(t *testing.T) {
	ctx := context.Background()
	enc := testConfig()
	enc.EncryptionKeyFile = keyFile(t)
	enc.DisableGossip = true // anti-entropy alone: Merkle digests must agree
	plain := testConfig()
	plain.DisableGossip = true
	a, b := startNode(t, enc), startNode(t, plain)
	acked := writeKeys(t, a, "a", 30)
	for k, v := range writeKeys(t, b, "b", 30) {
		acked[k] = v
	}
	link(t, a, b)
	waitFor(t, 10*time.Second, "converged", converged(t, []*Node{a, b}))
	for _, n := range []*Node{a, b} {
		if err := hasAll(ctx, n, acked); err != nil {
			t.Fatal(err)
		}
	}
}
