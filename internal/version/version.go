package version

import (
	"runtime"
	"runtime/debug"
)

// Version, when set with -ldflags "-X .../internal/version.Version=V",
// is the version reported, whatever the build info says. Default "".
var Version = ""

// Info describes the running build.
type Info struct {
	// Version is Version if set, else the main module's version, else
	// "devel" with the VCS revision when Go recorded one.
	Version string `json:"version"`
	// Revision is the VCS revision, "" when not recorded (-buildvcs=false).
	Revision string `json:"revision,omitempty"`
	// Modified says the work tree had uncommitted changes at build time.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"go_version"`
}

// Get returns the running build's Info.
func Get() Info {
	info := Info{GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	switch {
	case Version != "":
		info.Version = Version
	case ok && bi.Main.Version != "" && bi.Main.Version != "(devel)":
		info.Version = bi.Main.Version
	case info.Revision != "":
		info.Version = "devel+" + short(info.Revision)
		if info.Modified {
			info.Version += "-dirty"
		}
	default:
		info.Version = "devel"
	}
	return info
}

// short is the first 12 characters of a revision.
func short(rev string) string {
	return rev[:min(len(rev), 12)]
}

// String is the one-line form meshd --version prints: "v1.2.0 (go1.26.8)".
func (i Info) String() string {
	return i.Version + " (" + i.GoVersion + ")"
}
