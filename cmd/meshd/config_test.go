package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meshd.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaults(t *testing.T) {
	s, err := loadSettings(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Data != "./meshdata" || s.API != "127.0.0.1:7700" || !s.MDNS || s.Memory || s.Mesh != "default" || len(s.Listen) != 2 {
		t.Fatalf("defaults = %+v", s)
	}
}

func TestFlagsOverrideFile(t *testing.T) {
	cfg := writeFile(t, `
data = "/from/file"
api = "127.0.0.1:9000"
mesh = "plant-7"
mdns = false
listen = ["/ip4/127.0.0.1/tcp/4001"]
bootstrap = ["/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWGRUVh6ZKXaVtHvD2wR3Bf1oMMSEbqWPnU8Xr6S3ChqPk"]
sync-interval = "3s"
log-format = "json"
`)
	s, err := loadSettings([]string{"--config", cfg, "--api", "127.0.0.1:9100", "--listen", "/ip4/127.0.0.1/tcp/5001", "--listen", "/ip4/127.0.0.1/tcp/5002"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Data != "/from/file" || s.Mesh != "plant-7" || s.MDNS || s.LogFormat != "json" || s.SyncInterval != 3*time.Second {
		t.Errorf("file values lost: %+v", s)
	}
	if s.API != "127.0.0.1:9100" {
		t.Errorf("--api did not override the file: %q", s.API)
	}
	// A list flag replaces the file's list rather than adding to it.
	if !slices.Equal(s.Listen, []string{"/ip4/127.0.0.1/tcp/5001", "/ip4/127.0.0.1/tcp/5002"}) {
		t.Errorf("listen = %v", s.Listen)
	}
	if len(s.Bootstrap) != 1 {
		t.Errorf("bootstrap from file = %v", s.Bootstrap)
	}
	// --mdns=true on the command line beats mdns = false in the file.
	s, err = loadSettings([]string{"--mdns=true", "--config", cfg}, nil)
	if err != nil || !s.MDNS {
		t.Errorf("--mdns=true over file: %v, %v", s.MDNS, err)
	}
}

func TestBadConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		file string
		args []string
		want string
	}{
		"bad toml":      {file: "data = \n", want: "line 1"},
		"unknown key":   {file: "data = \"x\"\nlisten-port = 4001\n", want: "unknown key listen-port"},
		"wrong type":    {file: "partitions = \"many\"\n", want: "partitions"},
		"missing file":  {args: []string{"--config", "/nonexistent/meshd.toml"}, want: "no such file"},
		"bad flag":      {args: []string{"--nope"}, want: "flag provided but not defined: -nope"},
		"bad bool":      {args: []string{"--mdns=maybe"}, want: "mdns"},
		"stray arg":     {args: []string{"serve"}, want: `unexpected argument "serve"`},
		"bad listen":    {args: []string{"--listen", "tcp://0.0.0.0:1"}, want: "--listen"},
		"no p2p":        {args: []string{"--bootstrap", "/ip4/127.0.0.1/tcp/1"}, want: "/p2p/PEERID"},
		"log format":    {args: []string{"--log-format", "xml"}, want: "--log-format"},
		"log level":     {args: []string{"--log-level", "loud"}, want: "--log-level"},
		"partitions":    {args: []string{"--partitions", "0"}, want: "--partitions"},
		"replication":   {args: []string{"--replication", "-1"}, want: "--replication"},
		"bad pin":       {args: []string{"--pin", "x"}, want: "partition must be"},
		"file bad list": {file: "listen = [\"nope\"]\n", want: "--listen"},
		"bare duration": {file: "sync-interval = 5\n", want: `sync-interval needs a unit`},
		"tiny interval": {args: []string{"--sync-interval", "1ns"}, want: "--sync-interval must be at least 100ms"},
		"tiny grace":    {args: []string{"--tombstone-grace", "5s"}, want: "--tombstone-grace must be at least 1m0s"},
		"bare grace":    {file: "tombstone-grace = 604800\n", want: `tombstone-grace needs a unit`},
		"free floor":    {args: []string{"--min-free-bytes", "-1"}, want: "--min-free-bytes"},
		"ballast":       {file: "ballast-bytes = -5\n", want: "--ballast-bytes"},
		"quota":         {args: []string{"--max-store-bytes", "-1"}, want: "--max-store-bytes"},
		"file quota":    {file: "max-store-bytes = -1\n", want: "--max-store-bytes"},
		"quota unit":    {args: []string{"--max-store-bytes", "1GiB"}, want: "max-store-bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeFile(t, tc.file)}, args...)
			}
			_, err := loadSettings(args, nil)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want a usage error containing %q", err, tc.want)
			}
			if line := oneLine(err); strings.Contains(line, "\n") || !strings.HasPrefix(line, "meshd: ") {
				t.Fatalf("message %q is not one meshd: line", line)
			}
		})
	}
}

func TestTokenFile(t *testing.T) {
	if _, err := readToken(writeFile(t, "  \n")); !errors.Is(err, errUsage) {
		t.Errorf("empty token file: %v", err)
	}
	if tok, err := readToken(writeFile(t, "s3cret\n")); err != nil || tok != "s3cret" {
		t.Errorf("token = %q, %v", tok, err)
	}
}

func TestSecurityFilesReachNodeConfig(t *testing.T) {
	cfgFile := writeFile(t, "allowlist = \"/etc/meshd/peers\"\n")
	s, err := loadSettings([]string{"--config", cfgFile, "--swarm-key", "/etc/meshd/swarm.key", "--encryption-key-file", "/etc/meshd/at-rest.key"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := s.nodeConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SwarmKeyFile != "/etc/meshd/swarm.key" || cfg.AllowlistFile != "/etc/meshd/peers" || cfg.EncryptionKeyFile != "/etc/meshd/at-rest.key" {
		t.Fatalf("node config: swarm %q, allowlist %q, encryption %q", cfg.SwarmKeyFile, cfg.AllowlistFile, cfg.EncryptionKeyFile)
	}
}

func TestDiskFlagsReachNodeConfig(t *testing.T) {
	s, err := loadSettings([]string{"--config", writeFile(t, "ballast-bytes = 0\n"), "--min-free-bytes", "1000000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := s.nodeConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinFreeBytes != 1000000 || cfg.BallastBytes != 0 {
		t.Fatalf("node config: min free %d, ballast %d; want 1000000, 0", cfg.MinFreeBytes, cfg.BallastBytes)
	}
}

func TestMaxStoreBytesFlag(t *testing.T) {
	if s, err := loadSettings(nil, nil); err != nil || s.MaxStoreBytes != 0 {
		t.Fatalf("default quota %d, %v; want 0 (none)", s.MaxStoreBytes, err)
	}
	// The flag beats the file, and reaches the node's config.
	s, err := loadSettings([]string{"--config", writeFile(t, "max-store-bytes = 5000000\n"), "--max-store-bytes", "1073741824"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := s.nodeConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxStoreBytes != 1<<30 {
		t.Fatalf("node config: max store bytes %d, want %d", cfg.MaxStoreBytes, 1<<30)
	}
	if out := printed(t, &s); !strings.Contains(out, "max-store-bytes = 1073741824\n") {
		t.Fatalf("config print lacks the quota:\n%s", out)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"--check", "--memory", "--max-store-bytes", "1048576"}, &out, &errb, nil); code != 0 || !strings.Contains(out.String(), "OK") {
		t.Fatalf("--check with a quota: exit %d, %q %q", code, out.String(), errb.String())
	}
	errb.Reset()
	if code := run([]string{"--check", "--data", t.TempDir(), "--max-store-bytes", "1048576"}, &out, &errb, nil); code != 2 || !strings.Contains(errb.String(), "at least 33554432") {
		t.Fatalf("--check with an on-disk quota pebble's log alone would fill: exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"--check", "--max-store-bytes", "-5"}, &out, &errb, nil); code != 2 || !strings.Contains(errb.String(), "--max-store-bytes must not be negative") {
		t.Fatalf("--check with a negative quota: exit %d, stderr %q", code, errb.String())
	}
}

func TestPlacementFlags(t *testing.T) {
	cfgFile := writeFile(t, "replication = 3\npin = [1, 2]\n")
	s, err := loadSettings([]string{"--config", cfgFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := s.nodeConfig(nil)
	if err != nil || cfg.Replication != 3 || !slices.Equal(cfg.Pinned, []uint32{1, 2}) {
		t.Fatalf("from file: R=%d pinned=%v, %v", cfg.Replication, cfg.Pinned, err)
	}
	s, err = loadSettings([]string{"--config", cfgFile, "--pin", "7"}, nil)
	if err != nil || !slices.Equal(s.Pin, []uint32{7}) {
		t.Fatalf("--pin over file: %v, %v", s.Pin, err)
	}
}
