package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"
)

// TestE2EFullDiskIsAStateNotACrash runs meshd on a 64 MiB tmpfs and
// writes until the free-space floor: the daemon answers 507 instead of
// dying, says so in status and metrics, serves every acknowledged write,
// writes again once its ballast file is deleted, and keeps them all
// across a restart.
func TestE2EFullDiskIsAStateNotACrash(t *testing.T) {
	fs := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(fs, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", fs, "tmpfs", 0, "size=64m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(fs, unix.MNT_DETACH) })
	data := filepath.Join(fs, "data")
	args := []string{"--min-free-bytes", fmt.Sprint(24 << 20), "--ballast-bytes", fmt.Sprint(8 << 20)}
	d := startDaemon(t, data, args...)

	put := func(key string) (string, int, apitypes.ErrorResponse) {
		b := make([]byte, 8<<10)
		_, _ = rand.Read(b)
		v := hex.EncodeToString(b)
		req, _ := http.NewRequest("PUT", d.api+"/v1/kv/"+key, strings.NewReader(v))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("PUT %s: %v; stderr:\n%s", key, err, d.stderr.String())
		}
		defer res.Body.Close()
		var e apitypes.ErrorResponse
		if res.StatusCode != http.StatusNoContent {
			_ = json.NewDecoder(res.Body).Decode(&e)
		}
		return v, res.StatusCode, e
	}
	acked := map[string]string{}
	full := false
	for i := 0; i < 8000 && !full; i++ {
		k := fmt.Sprintf("k%05d", i)
		switch v, code, e := put(k); code {
		case http.StatusNoContent:
			acked[k] = v
		case http.StatusInsufficientStorage:
			if e.Code != apitypes.CodeStoreFull {
				t.Fatalf("507 with code %q, want %q", e.Code, apitypes.CodeStoreFull)
			}
			full = true
		default:
			t.Fatalf("PUT %s after %d acknowledged: %d %+v", k, len(acked), code, e)
		}
	}
	if !full {
		t.Fatalf("%d writes on a 64 MiB filesystem and none refused", len(acked))
	}
	t.Logf("%d writes acknowledged before 507", len(acked))

	status := func() apitypes.StatusResponse {
		res, err := http.Get(d.api + "/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var st apitypes.StatusResponse
		if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := status(); !st.StoreFull || st.FreeBytes == 0 {
		t.Fatalf("status while full: store_full %v, free_bytes %d", st.StoreFull, st.FreeBytes)
	}
	res, err := http.Get(d.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(metrics), "\ngossipmesh_store_full 1\n") {
		t.Fatalf("metrics do not say the store is full")
	}
	checkAcked := func(d *daemon) {
		t.Helper()
		for k, v := range acked {
			if got, ok := d.get(k); !ok || got != v {
				t.Fatalf("acknowledged %s lost (%d bytes, found %v)", k, len(got), ok)
			}
		}
	}
	checkAcked(d)

	if err := os.Remove(filepath.Join(data, "ballast")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "room after the ballast went", func() bool { return !status().StoreFull })
	for i := range 5 {
		k := fmt.Sprintf("again%d", i)
		v, code, e := put(k)
		if code != http.StatusNoContent {
			t.Fatalf("PUT after the ballast went: %d %+v", code, e)
		}
		acked[k] = v
	}
	select {
	case <-d.exited:
		t.Fatalf("meshd exited; stderr:\n%s", d.stderr.String())
	default:
	}
	d.stop()
	checkAcked(startDaemon(t, data, args...))
}
