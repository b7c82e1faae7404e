package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
)

// labelKey labels every container and network a run creates, with the run
// ID as value, so that cleanup finds them all (and Cleanup finds those of a
// driver that died).
const labelKey = "io.gossipmesh.cluster"

// maxNodes bounds N: a run's addresses come from one /20 (a /26 for the
// control network, then a /29 per node pair).
const maxNodes = 32

// The network model mirrors the in-process harness's links. Every pair of
// nodes (i, j) shares a private bridge network of its own, the link; a
// partition cuts links and a slow fault slows them (see firewall), so any
// shape (halves, a bridge node, an isolated node) is a set of links and a
// node's addresses never change. A further control network, with
// inter-container traffic disabled, lets the driver on the host reach every
// node's HTTP API whatever the partition, while carrying no mesh traffic.
type topology struct {
	d     docker
	runID string
	n     int
	base  netip.Addr // the run's /20
	ctl   string
	links map[[2]int]*link
}

// link is the network of one node pair, i < j.
type link struct {
	name   string
	subnet netip.Prefix
	ips    [2]netip.Addr // of node i, of node j
	cut    bool          // partitioned: both ends drop each other's packets
	// slowEnd is -1, or the node whose packet filter delays and drops the
	// link's packets (one end only, so that each direction is slowed once).
	slowEnd int
}

func pair(i, j int) [2]int {
	if i > j {
		i, j = j, i
	}
	return [2]int{i, j}
}

func addrAdd(a netip.Addr, k int) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(k)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// ctlIP is node i's address on the control network.
func (t *topology) ctlIP(i int) netip.Addr { return addrAdd(t.base, 2+i) }

// linkIP is node i's address on its link with j.
func (t *topology) linkIP(i, j int) netip.Addr {
	l := t.links[pair(i, j)]
	if i < j {
		return l.ips[0]
	}
	return l.ips[1]
}

func (t *topology) netName(suffix string) string { return "gm-" + t.runID + "-" + suffix }

// create makes the control network and every link network. A subnet that
// overlaps one in use (another run, another project) makes it draw
// another /20 and try again.
func (t *topology) create(ctx context.Context, rng *rand.Rand) error {
	var lastErr error
	for range 10 {
		// 10.64.0.0/10 split in /20s: 1,024 choices.
		k := rng.IntN(1024)
		t.base = netip.AddrFrom4([4]byte{10, byte(64 + k/16), byte(16 * (k % 16)), 0})
		if lastErr = t.tryCreate(ctx); lastErr == nil {
			return nil
		}
		_ = t.removeNetworks(ctx)
		if !strings.Contains(lastErr.Error(), "overlap") {
			return lastErr
		}
	}
	return lastErr
}

func (t *topology) tryCreate(ctx context.Context) error {
	label := labelKey + "=" + t.runID
	t.ctl = t.netName("ctl")
	if _, err := t.d.run(ctx, "network", "create", "--label", label,
		"--subnet", netip.PrefixFrom(t.base, 26).String(),
		"-o", "com.docker.network.bridge.enable_icc=false", t.ctl); err != nil {
		return err
	}
	t.links = map[[2]int]*link{}
	p := 0
	for i := range t.n {
		for j := i + 1; j < t.n; j++ {
			sub := addrAdd(t.base, 64+8*p)
			l := &link{
				name:    t.netName(fmt.Sprintf("l%d-%d", i, j)),
				subnet:  netip.PrefixFrom(sub, 29),
				ips:     [2]netip.Addr{addrAdd(sub, 2), addrAdd(sub, 3)},
				slowEnd: -1,
			}
			t.links[[2]int{i, j}] = l
			p++
			if _, err := t.d.run(ctx, "network", "create", "--label", label, "--subnet", l.subnet.String(), l.name); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *topology) removeNetworks(ctx context.Context) error {
	nets, err := t.d.run(ctx, "network", "ls", "-q", "--filter", "label="+labelKey+"="+t.runID)
	if err != nil || nets == "" {
		return err
	}
	_, err = t.d.run(ctx, append([]string{"network", "rm"}, strings.Fields(nets)...)...)
	return err
}

// attach connects a created container of node i to its links.
func (t *topology) attach(ctx context.Context, i int, container string) error {
	for j := range t.n {
		if j == i {
			continue
		}
		l := t.links[pair(i, j)]
		if _, err := t.d.run(ctx, "network", "connect", "--ip", t.linkIP(i, j).String(), l.name, container); err != nil {
			return err
		}
	}
	return nil
}
