package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeStoreKey(t *testing.T, hexByte string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.key")
	if err := os.WriteFile(path, []byte(strings.Repeat(hexByte, 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A backup of an encrypted store is sealed: it shows no value, restores
// on a node with the same key and is refused, changing nothing, on others.
func TestE2EBackupOfEncryptedStoreIsSealed(t *testing.T) {
	const secret = "the-launch-code-is-0000"
	key := writeStoreKey(t, "ab")
	src := startDaemon(t, t.TempDir(), "--encryption-key-file", key)
	if err := src.put("launch", secret); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "sealed.gmbk")
	if _, err := src.ctl("backup", file); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(secret)) || bytes.Contains(data, []byte("launch")) {
		t.Fatal("the backup of an encrypted store shows a key or value in the clear")
	}

	dst := startDaemon(t, t.TempDir(), "--encryption-key-file", key)
	if _, err := dst.ctl("restore", file); err != nil {
		t.Fatal(err)
	}
	if v, ok := dst.get("launch"); !ok || v != secret {
		t.Fatalf("after restore on a node with the key: %q, %v", v, ok)
	}

	for name, args := range map[string][]string{
		"no key":      nil,
		"another key": {"--encryption-key-file", writeStoreKey(t, "cd")},
	} {
		other := startDaemon(t, t.TempDir(), args...)
		_, err := other.ctl("restore", file)
		if err == nil || !strings.Contains(err.Error(), "sealed") {
			t.Errorf("restore on a node with %s: %v, want a refusal naming the seal", name, err)
		}
		if _, ok := other.get("launch"); ok {
			t.Errorf("a refused restore on a node with %s stored the key", name)
		}
	}

	// A store kept in the clear still makes plain backups.
	plain := startDaemon(t, t.TempDir())
	if err := plain.put("launch", secret); err != nil {
		t.Fatal(err)
	}
	plainFile := filepath.Join(t.TempDir(), "plain.gmbk")
	if _, err := plain.ctl("backup", plainFile); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(plainFile); !bytes.Contains(data, []byte("launch")) {
		t.Fatal("a plain backup hides its keys: the check above proves nothing")
	}
}
