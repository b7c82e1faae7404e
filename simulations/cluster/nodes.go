package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	gosync "sync"
	"sync/atomic"
	"time"
)

// nodeState is what the driver knows of a container; the clients send only
// to nodes that are up.
type nodeState int32

const (
	stateUp nodeState = iota
	stateDown
	statePaused
	stateStarting
)

// member is one meshd container.
type member struct {
	idx       int
	container string
	api       api
	state     atomic.Int32 // nodeState
	busy      gosync.WaitGroup
	// sentBefore, gossipBefore and syncBefore are the bytes the node's
	// earlier processes sent (a kill loses the counters of the process it
	// ends), in all, by gossip and by anti-entropy.
	sentBefore, gossipBefore, syncBefore atomic.Uint64
}

func (m *member) is(s nodeState) bool { return nodeState(m.state.Load()) == s }

// fleet is the run's containers over its topology.
type fleet struct {
	cfg     *Config
	d       docker
	top     *topology
	image   string
	members []*member
	prog    func(string, ...any)
}

func newFleet(cfg *Config, d docker, top *topology, image string, prog func(string, ...any)) *fleet {
	f := &fleet{cfg: cfg, d: d, top: top, image: image, prog: prog}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second}}
	for i := range cfg.Nodes {
		m := &member{
			idx:       i,
			container: top.netName(fmt.Sprintf("n%d", i)),
			api:       api{base: fmt.Sprintf("http://%s:7700", top.ctlIP(i)), hc: hc},
		}
		m.state.Store(int32(stateDown))
		f.members = append(f.members, m)
	}
	return f
}

func (f *fleet) container(i int) string { return f.members[i].container }

// create makes every container (not started): on the control network, then
// on each of its links. Each node joins every other by its link address
// (meshd --join), so the mesh forms, and re-forms after faults, without the
// driver dialling anything.
func (f *fleet) create(ctx context.Context) error {
	for _, m := range f.members {
		args := []string{"create", "--name", m.container, "--hostname", fmt.Sprintf("n%d", m.idx),
			"--label", labelKey + "=" + f.top.runID,
			"--network", f.top.ctl, "--ip", f.top.ctlIP(m.idx).String(),
			f.image,
			"--mdns=false", "--log-level", "info",
			"--sync-interval", f.cfg.SyncInterval.String(),
			"--partitions", fmt.Sprint(f.cfg.Partitions),
			"--replication", fmt.Sprint(f.cfg.Replication),
		}
		for j := range f.cfg.Nodes {
			if j != m.idx {
				args = append(args, "--join", fmt.Sprintf("http://%s:7700", f.top.linkIP(j, m.idx)))
			}
		}
		if _, err := f.d.run(ctx, args...); err != nil {
			return err
		}
		if err := f.top.attach(ctx, m.idx, m.container); err != nil {
			return err
		}
	}
	return nil
}

// startAll starts every container and waits until each API answers and
// each node lists every other as a peer.
func (f *fleet) startAll(ctx context.Context) error {
	names := make([]string, len(f.members))
	for i, m := range f.members {
		names[i] = m.container
	}
	if _, err := f.d.run(ctx, append([]string{"start"}, names...)...); err != nil {
		return err
	}
	for _, m := range f.members {
		m.state.Store(int32(stateUp))
	}
	want := len(f.members) - 1
	return waitFor(ctx, 90*time.Second, 200*time.Millisecond, fmt.Sprintf("every node sees %d peers", want), func() (bool, error) {
		for _, m := range f.members {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			ps, err := m.api.peers(cctx)
			cancel()
			if err != nil {
				return false, err
			}
			if len(ps) < want {
				return false, fmt.Errorf("node %d lists %d peers", m.idx, len(ps))
			}
		}
		return true, nil
	})
}

// awaitAPI marks node i up once its API answers (after a start or
// restart), in the background; the clients skip it until then.
func (f *fleet) awaitAPI(ctx context.Context, i int, wg *gosync.WaitGroup) {
	m := f.members[i]
	m.state.Store(int32(stateStarting))
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := waitFor(ctx, 60*time.Second, 50*time.Millisecond, fmt.Sprintf("node %d API after start", i), func() (bool, error) {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := m.api.id(cctx)
			return err == nil, err
		})
		if err != nil {
			f.prog("%v", err)
			return
		}
		m.state.CompareAndSwap(int32(stateStarting), int32(stateUp))
	}()
}

// sampleBytes adds node i's current sent-bytes counter to what its earlier
// processes sent; called before its process ends.
func (f *fleet) sampleBytes(ctx context.Context, i int) {
	m := f.members[i]
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if b, err := m.api.bytesSent(cctx); err == nil {
		m.sentBefore.Add(b.total)
		m.gossipBefore.Add(b.gossip)
		m.syncBefore.Add(b.sync)
	}
}

// saveLogs writes each container's output to dir/node-I.log.
func (f *fleet) saveLogs(ctx context.Context, dir string) {
	for _, m := range f.members {
		out, err := f.d.runCombined(ctx, "logs", "--timestamps", m.container)
		if err != nil {
			continue
		}
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("node-%d.log", m.idx)), out, 0o644)
	}
}
