package helm

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// object is the part of a rendered Kubernetes object the test reads.
type object struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec yaml.Node `yaml:"spec"`
}

// render runs helm template on the chart and returns its objects by kind.
func render(t *testing.T, set ...string) (map[string][]object, error) {
	t.Helper()
	helm := os.Getenv("HELM")
	if helm == "" {
		t.Skip("HELM names no helm binary (.ci/run builds one: go install helm.sh/helm/v3/cmd/helm@v3.22.0)")
	}
	args := []string{"template", "mesh", "gossipmesh", "--namespace", "edge"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(helm, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New(stderr.String())
	}
	objs := map[string][]object{}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			t.Fatalf("rendered YAML: %v", err)
		}
		if o.Kind != "" {
			objs[o.Kind] = append(objs[o.Kind], o)
		}
	}
}

// statefulSet is the part of the StatefulSet spec the test checks.
type statefulSet struct {
	Replicas    int    `yaml:"replicas"`
	ServiceName string `yaml:"serviceName"`
	Template    struct {
		Metadata struct {
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Spec struct {
			Affinity struct {
				PodAntiAffinity yaml.Node `yaml:"podAntiAffinity"`
			} `yaml:"affinity"`
			Containers []container `yaml:"containers"`
		} `yaml:"spec"`
	} `yaml:"template"`
	VolumeClaimTemplates []yaml.Node `yaml:"volumeClaimTemplates"`
}

type container struct {
	Command        []string         `yaml:"command"`
	Args           []string         `yaml:"args"`
	LivenessProbe  probe            `yaml:"livenessProbe"`
	ReadinessProbe probe            `yaml:"readinessProbe"`
	Resources      map[string]any   `yaml:"resources"`
	VolumeMounts   []map[string]any `yaml:"volumeMounts"`
	Env            []map[string]any `yaml:"env"`
}

type probe struct {
	Exec struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
}

var secrets = []string{"swarmKey=/key/swarm/psk/1.0.0/\n/base16/\n" + strings.Repeat("ab", 32), "apiToken=t0ken"}

func TestChartRendersAMeshOfPeers(t *testing.T) {
	objs, err := render(t, append(secrets, "replicas=5", "mesh.replication=3")...)
	if err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[string]int{"StatefulSet": 1, "Service": 2, "Secret": 1, "PodDisruptionBudget": 1} {
		if len(objs[kind]) != want {
			t.Fatalf("%d %s objects, want %d", len(objs[kind]), kind, want)
		}
	}
	var headless struct {
		ClusterIP                string `yaml:"clusterIP"`
		PublishNotReadyAddresses bool   `yaml:"publishNotReadyAddresses"`
	}
	for _, svc := range objs["Service"] {
		if svc.Metadata.Name == "mesh-peers" {
			if err := svc.Spec.Decode(&headless); err != nil {
				t.Fatal(err)
			}
		}
	}
	if headless.ClusterIP != "None" || !headless.PublishNotReadyAddresses {
		t.Fatalf("peers Service %+v, want headless and publishing not-ready pods", headless)
	}
	var ss statefulSet
	if err := objs["StatefulSet"][0].Spec.Decode(&ss); err != nil {
		t.Fatal(err)
	}
	c := ss.Template.Spec.Containers[0]
	switch {
	case ss.Replicas != 5 || ss.ServiceName != "mesh-peers":
		t.Fatalf("replicas %d, service %q", ss.Replicas, ss.ServiceName)
	case len(ss.VolumeClaimTemplates) != 1:
		t.Fatal("no volume claim per peer")
	case ss.Template.Spec.Affinity.PodAntiAffinity.Kind == 0:
		t.Fatal("no pod anti-affinity")
	case ss.Template.Metadata.Annotations["prometheus.io/scrape"] != "true":
		t.Fatal("no Prometheus scrape annotation")
	case c.Resources["requests"] == nil || c.Resources["limits"] == nil:
		t.Fatal("no resource requests and limits")
	case !slices.Contains(c.Args, "--join=dns://mesh-peers.edge.svc.cluster.local:7700"):
		t.Fatalf("args %v lack the headless Service join", c.Args)
	case !slices.Contains(c.Args, "--replication=3"):
		t.Fatalf("args %v lack the replication factor", c.Args)
	case !slices.Contains(c.LivenessProbe.Exec.Command, "health") || !slices.Contains(c.ReadinessProbe.Exec.Command, "--ready"):
		t.Fatalf("probes %v / %v", c.LivenessProbe.Exec.Command, c.ReadinessProbe.Exec.Command)
	}
	checkMeshdTakes(t, c)
}

// checkMeshdTakes runs meshd --check with the container's command line,
// its secret files replaced by real ones, so a flag the chart passes that
// meshd does not take fails here, not in a cluster.
func checkMeshdTakes(t *testing.T, c container) {
	dir := t.TempDir()
	meshd := filepath.Join(dir, "meshd")
	if out, err := exec.Command("go", "build", "-o", meshd, "github.com/gossipmesh/gossipmesh/cmd/meshd").CombinedOutput(); err != nil {
		t.Fatalf("build meshd: %v\n%s", err, out)
	}
	key, token := filepath.Join(dir, "swarm.key"), filepath.Join(dir, "api-token")
	os.WriteFile(key, []byte(strings.TrimPrefix(secrets[0], "swarmKey=")), 0o600)
	os.WriteFile(token, []byte("t0ken"), 0o600)
	args := []string{"--check"}
	for _, a := range c.Args {
		a = strings.ReplaceAll(a, "/secrets/swarm.key", key)
		a = strings.ReplaceAll(a, "/secrets/api-token", token)
		a = strings.ReplaceAll(a, "=/data", "="+filepath.Join(dir, "data"))
		a = strings.ReplaceAll(a, "$(POD_IP)", "10.1.2.3")
		args = append(args, a)
	}
	if out, err := exec.Command(meshd, args...).CombinedOutput(); err != nil {
		t.Fatalf("meshd %v: %v\n%s", args, err, out)
	}
}

func TestChartRefusesToRenderWithoutItsSecrets(t *testing.T) {
	_, err := render(t)
	if err == nil || !strings.Contains(err.Error(), "swarmKey") {
		t.Fatalf("rendered without a swarm key: %v", err)
	}
	if _, err := render(t, "existingSecret=mine"); err != nil {
		t.Fatalf("with an existing Secret: %v", err)
	}
}
