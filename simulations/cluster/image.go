package cluster

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// dockerfile is simulations/cluster/Dockerfile, embedded so the driver can
// build the image from any working directory.
//
//go:embed Dockerfile
var dockerfile []byte

// imageRepo is the repository of the images the driver builds; the tag is
// the first 12 hex digits of the binary's SHA-256 and the Dockerfile's, so
// an unchanged binary reuses its image.
const imageRepo = "gossipmesh/meshd"

// moduleDir finds the root of the gossipmesh module: from the working
// directory upwards, else from this source file (a test binary or go run).
func moduleDir() (string, error) {
	try := func(dir string) (string, bool) {
		for {
			b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && strings.Contains(string(b), "module github.com/gossipmesh/gossipmesh\n") {
				return dir, true
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return "", false
			}
			dir = parent
		}
	}
	if wd, err := os.Getwd(); err == nil {
		if d, ok := try(wd); ok {
			return d, nil
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		if d, ok := try(filepath.Dir(file)); ok {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: cannot find the gossipmesh module (run inside the repository)", ErrBuild)
}

// buildImage builds the static meshd and meshctl binaries (the Go build
// cache makes an unchanged tree cheap; meshctl is the image's
// healthcheck) and, unless an image of the same binaries exists, the
// image. It returns the image reference.
func buildImage(ctx context.Context, d docker, progress func(string, ...any)) (string, error) {
	root, err := moduleDir()
	if err != nil {
		return "", err
	}
	ctxDir, err := os.MkdirTemp("", "gossipmesh-image-")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBuild, err)
	}
	defer os.RemoveAll(ctxDir)
	h := sha256.New()
	for _, name := range []string{"meshd", "meshctl"} {
		sum, err := buildStatic(ctx, root, ctxDir, name, progress)
		if err != nil {
			return "", err
		}
		h.Write(sum)
	}
	h.Write(dockerfile)
	ref := imageRepo + ":" + hex.EncodeToString(h.Sum(nil))[:12]
	if _, err := d.run(ctx, "image", "inspect", "--format", "{{.Id}}", ref); err == nil {
		progress("image %s is up to date", ref)
		return ref, nil
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), dockerfile, 0o644); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBuild, err)
	}
	progress("building image %s", ref)
	if _, err := d.run(ctx, "build", "-q", "-t", ref, ctxDir); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBuild, err)
	}
	return ref, nil
}

// buildStatic builds ./cmd/NAME into dir/NAME with CGO off and returns
// the binary's SHA-256.
func buildStatic(ctx context.Context, root, dir, name string, progress func(string, ...any)) ([]byte, error) {
	bin := filepath.Join(dir, name)
	progress("building static %s (CGO_ENABLED=0 go build ./cmd/%s)", name, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%w: go build ./cmd/%s: %v\n%s", ErrBuild, name, err, out)
	}
	sum, err := fileHash(bin)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBuild, err)
	}
	return sum, nil
}

func fileHash(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
