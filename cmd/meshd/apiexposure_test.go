package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNetworkAPIWithoutTokenIsRefused(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("s3cret\n"), 0o600)
	for _, c := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--api", "127.0.0.1:7700"}, true},
		{[]string{"--api", "[::1]:7700"}, true},
		{[]string{"--api", "localhost:7700"}, true},
		{[]string{"--api", "0.0.0.0:7700"}, false},
		{[]string{"--api", ":7700"}, false},
		{[]string{"--api", "192.168.1.5:7700"}, false},
		{[]string{"--api", "0.0.0.0:7700", "--api-token-file", tok}, true},
		{[]string{"--api", "0.0.0.0:7700", "--api-insecure"}, true},
	} {
		s, err := loadSettings(append([]string{"--memory"}, c.args...), io.Discard)
		if err == nil {
			err = checkSettings(&s)
		}
		if c.ok && err != nil {
			t.Errorf("%v: %v", c.args, err)
		}
		if !c.ok && (!errors.Is(err, errUsage) || !strings.Contains(err.Error(), "without a token")) {
			t.Errorf("%v: got %v, want a usage error about the token", c.args, err)
		}
	}
	// Through run: one line on stderr, exit 2, before anything starts.
	var stderr strings.Builder
	if code := run([]string{"--memory", "--api", "0.0.0.0:0"}, io.Discard, &stderr, nil); code != 2 {
		t.Fatalf("exit %d, want 2; stderr %q", code, stderr.String())
	}
}
