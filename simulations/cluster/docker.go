package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// docker runs the Docker CLI. There is no SDK dependency: the CLI is what
// an operator has, and its error text is what they would see.
type docker struct {
	bin string // "docker"
}

// run executes docker with args and returns its trimmed stdout. A failure
// wraps ErrDocker with the command and its stderr.
func (d docker) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, d.bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: docker %s: %v: %s", ErrDocker, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// available reports whether an engine answers, wrapping ErrNoDocker if not.
func (d docker) available(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := d.run(ctx, "info", "--format", "{{.ServerVersion}}"); err != nil {
		return fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	return nil
}

// Available reports whether a Docker engine is reachable through the docker
// CLI; the error wraps ErrNoDocker.
func Available(ctx context.Context) error { return docker{bin: "docker"}.available(ctx) }

// removeByLabel removes every container, then every network, carrying the
// label key=value. It is the cleanup of a run, and works after a crash of
// the driver too (see Cleanup).
func (d docker) removeByLabel(ctx context.Context, label string) error {
	var errs []string
	ids, err := d.run(ctx, "ps", "-aq", "--filter", "label="+label)
	if err != nil {
		errs = append(errs, err.Error())
	}
	if ids != "" {
		// Unpause first: a paused container cannot be killed on every
		// engine version.
		if paused, _ := d.run(ctx, "ps", "-q", "--filter", "label="+label, "--filter", "status=paused"); paused != "" {
			_, _ = d.run(ctx, append([]string{"unpause"}, strings.Fields(paused)...)...)
		}
		if _, err := d.run(ctx, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...); err != nil {
			errs = append(errs, err.Error())
		}
	}
	nets, err := d.run(ctx, "network", "ls", "-q", "--filter", "label="+label)
	if err != nil {
		errs = append(errs, err.Error())
	}
	if nets != "" {
		// A busy engine can release a removed container's endpoints a
		// moment after `rm` returns; the network refuses to go until then.
		var err error
		for wait := 100 * time.Millisecond; ; wait *= 2 {
			if _, err = d.run(ctx, append([]string{"network", "rm"}, strings.Fields(nets)...)...); err == nil ||
				!strings.Contains(err.Error(), "active endpoints") || wait > 5*time.Second {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			// Some may be gone by now; retry with what is left.
			if nets, _ = d.run(ctx, "network", "ls", "-q", "--filter", "label="+label); nets == "" {
				err = nil
				break
			}
		}
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: cleanup: %s", ErrDocker, strings.Join(errs, "; "))
	}
	return nil
}

// Cleanup removes the containers and networks of every cluster run, or of
// one run when runID is not empty: the way out after a driver was killed
// before it could clean up after itself.
func Cleanup(ctx context.Context, runID string) error {
	label := labelKey
	if runID != "" {
		label += "=" + runID
	}
	return docker{bin: "docker"}.removeByLabel(ctx, label)
}

// runCombined executes docker with args and returns stdout and stderr
// together (docker logs replays the container's two streams on them).
func (d docker) runCombined(ctx context.Context, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, d.bin, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%w: docker %s: %v", ErrDocker, strings.Join(args, " "), err)
	}
	return out, nil
}
