package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const unitFile = "deploy/meshd.service"

// The unit runs meshd with flags it knows, hardened, and systemd (where
// its tools are installed) accepts it.
func TestSystemdUnit(t *testing.T) {
	raw, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(raw)
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=meshd", "NoNewPrivileges=yes",
		"ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("%s lacks %q", unitFile, strings.TrimSpace(want))
		}
	}
	for _, line := range strings.Split(unit, "\n") {
		cmd, ok := strings.CutPrefix(line, "ExecStart=")
		if !ok {
			cmd, ok = strings.CutPrefix(line, "ExecStartPre=")
		}
		if !ok {
			continue
		}
		args := strings.Fields(cmd)[1:]
		var s settings
		var cli cliFlags
		if err := flagSet(&s, &cli, io.Discard).Parse(args); err != nil {
			t.Errorf("%s: meshd refuses %q: %v", unitFile, cmd, err)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit not verified by systemd")
		return
	}
	meshd, _ := binaries(t)
	local := filepath.Join(t.TempDir(), "meshd.service")
	if err := os.WriteFile(local, []byte(strings.ReplaceAll(unit, "/usr/local/bin/meshd", meshd)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", local).CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

const stackFile = "deploy/swarm/stack.yaml"

// The Swarm stack runs meshd with flags it accepts (after the image's
// entrypoint flags), joins by tasks.meshd and gives each task slot its
// own volume.
func TestSwarmStackFile(t *testing.T) {
	raw, err := os.ReadFile(stackFile)
	if err != nil {
		t.Fatal(err)
	}
	stack := string(raw)
	args := []string{"--data", "/data", "--api", "0.0.0.0:7700", "--api-insecure", "--open"}
	args = append(args, stackCommand(stack)...)
	if !slices.Contains(args, "--join=dns://tasks.meshd:7700") {
		t.Errorf("%s: command %v does not join dns://tasks.meshd:7700", stackFile, args)
	}
	if _, err := loadSettings(args, io.Discard); err != nil {
		t.Errorf("%s: meshd refuses %v: %v", stackFile, args, err)
	}
	for _, want := range []string{"{{.Task.Slot}}", "- data:/data", "driver: overlay", "${MESHD_IMAGE:-"} {
		if !strings.Contains(stack, want) {
			t.Errorf("%s lacks %q", stackFile, want)
		}
	}
}

// stackCommand returns the items of the service's command: list.
func stackCommand(stack string) []string {
	var out []string
	in := false
	for _, line := range strings.Split(stack, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "command:":
			in = true
		case in && strings.HasPrefix(trimmed, "- "):
			out = append(out, strings.TrimPrefix(trimmed, "- "))
		case in:
			return out
		}
	}
	return out
}
