package main

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

const exampleConfig = "meshd.example.toml"

// The example file holds every key, each set to its default: loading it
// over the zero settings gives the defaults.
func TestExampleConfigIsTheDefaults(t *testing.T) {
	var got settings
	if err := readConfigFile(exampleConfig, &got); err != nil {
		t.Fatal(err)
	}
	if a, b := printed(t, &got), printed(t, ptr(defaultSettings())); a != b {
		t.Fatalf("%s differs from the defaults:\n--- file\n%s\n--- defaults\n%s", exampleConfig, a, b)
	}
	md, err := toml.DecodeFile(exampleConfig, &settings{})
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(settings{})
	for i := range typ.NumField() {
		if key := typ.Field(i).Tag.Get("toml"); key != "" && !md.IsDefined(key) {
			t.Errorf("%s lacks the key %s", exampleConfig, key)
		}
	}
}

// config print writes a file that --config reads back to the same
// settings, and that --check accepts.
func TestConfigPrintRoundTrips(t *testing.T) {
	var out, errb bytes.Buffer
	args := []string{"config", "print", "--mesh", "plant-7", "--bootstrap", "/ip4/10.0.0.2/tcp/7800/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN", "--sync-interval", "2s", "--open"}
	if code := run(args, &out, &errb, nil); code != 0 {
		t.Fatalf("config print: exit %d: %s", code, errb.String())
	}
	file := t.TempDir() + "/printed.toml"
	if err := os.WriteFile(file, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	want, err := loadSettings(args[2:], nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := loadSettings([]string{"--config", file}, nil)
	if err != nil {
		t.Fatalf("reading the printed config: %v\n%s", err, out.String())
	}
	if a, b := printed(t, &got), printed(t, &want); a != b {
		t.Fatalf("printed config read back differs:\n%s\nwant\n%s", a, b)
	}
	out.Reset()
	if code := run([]string{"--config", file, "--check"}, &out, &errb, nil); code != 0 || !strings.Contains(out.String(), "OK") {
		t.Fatalf("--check of the printed config: exit %d, %q %q", code, out.String(), errb.String())
	}
}

func TestCheckRefusesWhatStartWould(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"--check", "--encryption-key-file", "/nonexistent/key"}, &out, &errb, nil)
	if code != 2 || !strings.Contains(errb.String(), "encryption") {
		t.Fatalf("--check with a missing key file: exit %d, stderr %q", code, errb.String())
	}
}

func printed(t *testing.T, s *settings) string {
	t.Helper()
	var b bytes.Buffer
	if err := printConfig(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func ptr[T any](v T) *T { return &v }
