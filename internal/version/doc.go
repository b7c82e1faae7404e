// Package version says which build of gossipmesh is running, for
// meshd --version, meshctl version, GET /v1/status and the
// gossipmesh_build_info metric.
//
// A release build sets the version with the linker:
//
//	go build -ldflags "-X github.com/gossipmesh/gossipmesh/internal/version.Version=v1.2.0" ./cmd/meshd
//
// Otherwise it comes from the module version (go install ...@v1.2.0), or
// the VCS revision Go stamped into the binary, or "devel":
//
//	fmt.Println(version.Get().Version) // v1.2.0, devel+3f2a1b9c0d4e, devel
package version
