package cluster

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestMDNSDiscovery starts five containers on one bridge network with mDNS
// on and neither --bootstrap nor --join: they must find each other by
// multicast alone, every node listing the four others at GET /v1/peers.
func TestMDNSDiscovery(t *testing.T) {
	image := needDocker(t)
	const n = 5
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := docker{bin: "docker"}
	runID := newRunID()
	t.Logf("run %s", runID)
	t.Cleanup(func() {
		if err := d.removeByLabel(context.Background(), labelKey+"="+runID); err != nil {
			t.Error(err)
		}
	})
	label := labelKey + "=" + runID
	netName := "gm-" + runID + "-lan"
	if _, err := d.run(ctx, "network", "create", "--label", label, netName); err != nil {
		t.Fatal(err)
	}
	apis := make([]api, n)
	hc := &http.Client{}
	for i := range n {
		name := fmt.Sprintf("gm-%s-n%d", runID, i)
		if _, err := d.run(ctx, "run", "-d", "--name", name, "--label", label, "--network", netName,
			image, "--mdns=true", "--log-level", "warn"); err != nil {
			t.Fatal(err)
		}
		ip, err := d.run(ctx, "inspect", "--format", "{{(index .NetworkSettings.Networks \""+netName+"\").IPAddress}}", name)
		if err != nil {
			t.Fatal(err)
		}
		apis[i] = api{base: "http://" + ip + ":7700", hc: hc}
	}
	err := waitFor(ctx, 60*time.Second, 200*time.Millisecond, "every node lists the others", func() (bool, error) {
		for i, a := range apis {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			ps, err := a.peers(cctx)
			cancel()
			if err != nil {
				return false, err
			}
			if len(ps) < n-1 {
				return false, fmt.Errorf("node %d lists %d peers", i, len(ps))
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// And they replicate: a write on one is read on all.
	if err := apis[0].do(ctx, http.MethodPut, "/v1/kv/found", []byte("by mdns"), http.StatusNoContent, nil); err != nil {
		t.Fatal(err)
	}
	err = waitFor(ctx, 30*time.Second, 100*time.Millisecond, "the write on every node", func() (bool, error) {
		for _, a := range apis {
			v, ok, err := a.register(ctx, "found")
			if err != nil || !ok || v != "by mdns" {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
