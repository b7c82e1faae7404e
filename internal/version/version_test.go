package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestLinkerVersionWins(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "v9.8.7"
	if got := Get(); got.Version != "v9.8.7" || got.GoVersion != runtime.Version() {
		t.Fatalf("Get() = %+v, want Version v9.8.7 and GoVersion %s", got, runtime.Version())
	}
	if got := Get().String(); got != "v9.8.7 ("+runtime.Version()+")" {
		t.Fatalf("String() = %q", got)
	}
}

func TestWithoutLinkerVersion(t *testing.T) {
	if Version != "" {
		t.Skip("built with a linker version")
	}
	got := Get()
	if got.Version == "" || (!strings.HasPrefix(got.Version, "devel") && !strings.HasPrefix(got.Version, "v")) {
		t.Fatalf("Get().Version = %q, want devel... or a module version", got.Version)
	}
}
