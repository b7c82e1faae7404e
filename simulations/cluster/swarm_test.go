package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// swarmStack is the stack cmd/meshd/deploy/swarm/stack.yaml deployed on a
// single-node swarm, reached through docker exec of the image's meshctl
// (the image has no shell, and its API is not published).
type swarmStack struct {
	t       *testing.T
	d       docker
	name    string // the stack
	service string // name_meshd
	acked   []string
}

// TestSwarmStack deploys the Swarm stack with 5 replicas, writes through
// one task and reads through every other, kills a task's container so
// that Swarm replaces it, scales to 7 and back to 5, and after each step
// waits until every acknowledged write is on every live task and all their
// roots agree, printing the acknowledged writes and the convergence time.
func TestSwarmStack(t *testing.T) {
	image := needDocker(t)
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	d := docker{bin: "docker"}
	ensureSwarm(ctx, t, d)
	s := deployStack(ctx, t, d, image)
	s.waitJoined(ctx, 5)

	writer := s.tasks(ctx)[0]
	s.write(ctx, writer, "deploy", 10)
	s.converged(ctx, "deploy", 5)
	s.readThroughAll(ctx, writer)

	victim := s.tasks(ctx)[1]
	if _, err := d.run(ctx, "kill", victim); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	s.write(ctx, s.tasks(ctx)[0], "kill", 10)
	s.waitReplaced(ctx, victim, 5)
	s.convergedSince(ctx, "kill", 5, killed)

	s.scale(ctx, 7)
	s.scale(ctx, 5)
	t.Logf("swarm test wall time %v, %d acknowledged writes", time.Since(began).Round(time.Millisecond), len(s.acked))
}

// ensureSwarm makes this engine a single-node swarm unless it is one, and
// leaves it again at the end only if it made it.
func ensureSwarm(ctx context.Context, t *testing.T, d docker) {
	t.Helper()
	state, err := d.run(ctx, "info", "--format", "{{.Swarm.LocalNodeState}}")
	if err != nil {
		t.Fatal(err)
	}
	if state == "active" {
		return
	}
	if _, err := d.run(ctx, "swarm", "init", "--advertise-addr", "127.0.0.1"); err != nil {
		t.Skipf("cannot make a single-node swarm on this engine: %v", err)
	}
	t.Cleanup(func() {
		if _, err := d.run(context.Background(), "swarm", "leave", "--force"); err != nil {
			t.Error(err)
		}
	})
}

// deployStack deploys the stack file with MESHD_IMAGE set to image; the
// stack and its volumes are removed at the end.
func deployStack(ctx context.Context, t *testing.T, d docker, image string) *swarmStack {
	t.Helper()
	root, err := moduleDir()
	if err != nil {
		t.Fatal(err)
	}
	s := &swarmStack{t: t, d: d, name: "gm" + newRunID()}
	s.service = s.name + "_meshd"
	t.Cleanup(s.remove)
	cmd := exec.CommandContext(ctx, d.bin, "stack", "deploy", "-c",
		filepath.Join(root, "cmd/meshd/deploy/swarm/stack.yaml"), s.name)
	cmd.Env = append(os.Environ(), "MESHD_IMAGE="+image)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker stack deploy: %v\n%s", err, out)
	}
	t.Logf("stack %s deployed with image %s", s.name, image)
	return s
}

// remove takes the stack down, waits for its containers to go and
// removes its volumes.
func (s *swarmStack) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := s.d.run(ctx, "stack", "rm", s.name); err != nil {
		s.t.Error(err)
	}
	for ctx.Err() == nil {
		if ids, err := s.d.run(ctx, "ps", "-aq", "--filter", "label=com.docker.swarm.service.name="+s.service); err == nil && ids == "" {
			break
		}
		pause(ctx, 500*time.Millisecond)
	}
	vols, _ := s.d.run(ctx, "volume", "ls", "-q", "--filter", "name="+s.service+"-data-")
	if vols != "" {
		if _, err := s.d.run(ctx, append([]string{"volume", "rm"}, strings.Fields(vols)...)...); err != nil {
			s.t.Error(err)
		}
	}
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// tasks lists the running containers of the service.
func (s *swarmStack) tasks(ctx context.Context) []string {
	out, err := s.d.run(ctx, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+s.service, "--filter", "status=running")
	if err != nil {
		s.t.Fatal(err)
	}
	ids := strings.Fields(out)
	slices.Sort(ids)
	return ids
}

// meshctl runs the image's meshctl in container c against its own API.
func (s *swarmStack) meshctl(ctx context.Context, c string, args ...string) (string, error) {
	return s.d.run(ctx, append([]string{"exec", c, "/meshctl", "--api", "127.0.0.1:7700"}, args...)...)
}

// waitJoined waits for n running tasks that each list a peer. Tasks that
// never find one because the name does not resolve (Swarm's DNS serves no
// record for tasks.meshd on this engine) skip the test, saying so.
func (s *swarmStack) waitJoined(ctx context.Context, n int) {
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if ids := s.tasks(ctx); len(ids) == n && s.allHavePeers(ctx, ids) {
			return
		}
		pause(ctx, time.Second)
	}
	ids := s.tasks(ctx)
	if len(ids) > 0 {
		logs, _ := exec.CommandContext(ctx, s.d.bin, "logs", ids[0]).CombinedOutput()
		if strings.Contains(string(logs), "name does not resolve") {
			s.t.Skipf("Swarm's DNS does not resolve tasks.meshd on this engine (every task found no peer in 90s; task log: %s)", lastLine(logs, "name does not resolve"))
		}
	}
	s.t.Fatalf("%d running tasks, want %d each with a peer", len(ids), n)
}

func lastLine(b []byte, with string) string {
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], with) {
			return lines[i]
		}
	}
	return ""
}

func (s *swarmStack) allHavePeers(ctx context.Context, ids []string) bool {
	for _, c := range ids {
		if out, err := s.meshctl(ctx, c, "peers"); err != nil || out == "" {
			return false
		}
	}
	return true
}

// write puts count keys through container c and records those acknowledged.
func (s *swarmStack) write(ctx context.Context, c, step string, count int) {
	for i := range count {
		key := fmt.Sprintf("%s-%03d", step, i)
		if _, err := s.meshctl(ctx, c, "put", key, "v-"+key); err != nil {
			s.t.Logf("write %s not acknowledged: %v", key, err)
			continue
		}
		s.acked = append(s.acked, key)
	}
}

// readThroughAll reads every acknowledged write through every task but
// the writer.
func (s *swarmStack) readThroughAll(ctx context.Context, writer string) {
	for _, c := range s.tasks(ctx) {
		if c == writer {
			continue
		}
		for _, key := range s.acked {
			if v, err := s.meshctl(ctx, c, "get", key); err != nil || v != "v-"+key {
				s.t.Errorf("task %.12s: get %s = %q, %v; want %q", c, key, v, err, "v-"+key)
			}
		}
	}
}

// waitReplaced waits until Swarm runs n tasks again, none of them gone.
func (s *swarmStack) waitReplaced(ctx context.Context, gone string, n int) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if ids := s.tasks(ctx); len(ids) == n && !slices.Contains(ids, gone) {
			return
		}
		pause(ctx, 500*time.Millisecond)
	}
	s.t.Fatalf("Swarm did not replace the killed task %.12s within 2m", gone)
}

// scale sets the replica count, writes through a task while Swarm scales,
// and waits for convergence.
func (s *swarmStack) scale(ctx context.Context, n int) {
	began := time.Now()
	if _, err := s.d.run(ctx, "service", "scale", "--detach", fmt.Sprintf("%s=%d", s.service, n)); err != nil {
		s.t.Fatal(err)
	}
	step := fmt.Sprintf("scale%d", n)
	s.write(ctx, s.tasks(ctx)[0], step, 10)
	s.convergedSince(ctx, step, n, began)
}

func (s *swarmStack) converged(ctx context.Context, step string, n int) {
	s.convergedSince(ctx, step, n, time.Now())
}

// convergedSince waits until exactly n tasks run, each holding every
// acknowledged write, with the same roots, and logs the time since began.
func (s *swarmStack) convergedSince(ctx context.Context, step string, n int, began time.Time) {
	deadline := time.Now().Add(3 * time.Minute)
	var why string
	for time.Now().Before(deadline) {
		ids := s.tasks(ctx)
		if len(ids) != n {
			why = fmt.Sprintf("%d running tasks, want %d", len(ids), n)
		} else if why = s.disagreement(ctx, ids); why == "" {
			s.t.Logf("%s: %d tasks converged, %d acknowledged writes on each, roots agree, %v after the step began",
				step, n, len(s.acked), time.Since(began).Round(time.Millisecond))
			return
		}
		pause(ctx, 500*time.Millisecond)
	}
	s.t.Fatalf("%s: not converged within 3m: %s", step, why)
}

// disagreement says what keeps ids from agreeing, or "" when every one
// holds every acknowledged write and all roots are equal.
func (s *swarmStack) disagreement(ctx context.Context, ids []string) string {
	var first string
	for _, c := range ids {
		roots, err := s.roots(ctx, c)
		if err != nil {
			return fmt.Sprintf("task %.12s: %v", c, err)
		}
		if missing := s.missing(ctx, c); missing != "" {
			return fmt.Sprintf("task %.12s: %s", c, missing)
		}
		if first == "" {
			first = roots
		} else if roots != first {
			return fmt.Sprintf("task %.12s: roots differ from task %.12s's", c, ids[0])
		}
	}
	return ""
}

func (s *swarmStack) missing(ctx context.Context, c string) string {
	out, err := s.meshctl(ctx, c, "keys")
	if err != nil {
		return err.Error()
	}
	have := strings.Fields(out)
	for _, key := range s.acked {
		if !slices.Contains(have, key) {
			return "lacks acknowledged write " + key
		}
	}
	return ""
}

// roots returns a task's partition roots, joined.
func (s *swarmStack) roots(ctx context.Context, c string) (string, error) {
	out, err := s.meshctl(ctx, c, "--json", "status")
	if err != nil {
		return "", err
	}
	var st struct {
		Partitions []struct {
			Root string `json:"root"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return "", fmt.Errorf("status: %v", err)
	}
	roots := make([]string, len(st.Partitions))
	for i, p := range st.Partitions {
		roots[i] = p.Root
	}
	return strings.Join(roots, ","), nil
}
