package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	gosync "sync"
)

// firewall puts each node's packet filter in the state the network faults
// ask for. A cut link drops, at both ends, every packet to or from the
// peer's address on the link: the interface stays up and nothing tells
// either node, as when a real network loses the path. A slow link sends
// the link's packets, at one end, to an NFQUEUE reader (nfq) that delays
// and drops them.
//
// The containers are FROM scratch, so the rules are set from the host:
// `nsenter -t PID -n iptables-restore` runs the host's iptables inside the
// container's network namespace, and replaces its filter table whole, so a
// node's rules are always exactly what the links say. A killed container
// has no namespace to enter and is skipped; a started or restarted one has
// a new, empty namespace, and sync sets its rules again.
type firewall struct {
	top  *topology
	d    docker
	name func(int) string // container of node i
	em   netem
	seed uint64
	prog func(string, ...any)

	mu      gosync.Mutex
	readers map[int]*nfq // by node: the reader of its slow links
	pids    map[int]int  // by node: the process whose namespace its reader is in
}

// nfqNum is the queue every node's slow links use: queue numbers belong to
// a network namespace, so one number serves every container.
const nfqNum = 7

func newFirewall(top *topology, d docker, name func(int) string, em netem, seed uint64, prog func(string, ...any)) *firewall {
	return &firewall{top: top, d: d, name: name, em: em, seed: seed, prog: prog, readers: map[int]*nfq{}, pids: map[int]int{}}
}

// rules is node i's filter table, in iptables-restore's format.
func (fw *firewall) rules(i int) (table string, slow bool) {
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	for j := range fw.top.n {
		if j == i {
			continue
		}
		l := fw.top.links[pair(i, j)]
		peer := fw.top.linkIP(j, i).String()
		switch {
		case l.cut:
			fmt.Fprintf(&b, "-A INPUT -s %s -j DROP\n-A OUTPUT -d %s -j DROP\n", peer, peer)
		case l.slowEnd == i:
			fmt.Fprintf(&b, "-A INPUT -s %s -j NFQUEUE --queue-num %d\n-A OUTPUT -d %s -j NFQUEUE --queue-num %d\n", peer, nfqNum, peer, nfqNum)
			slow = true
		}
	}
	b.WriteString("COMMIT\n")
	return b.String(), slow
}

// pid returns the process ID of node i's container, 0 when it is not
// running.
func (fw *firewall) pid(ctx context.Context, i int) (int, error) {
	out, err := fw.d.run(ctx, "inspect", "-f", "{{.State.Pid}}", fw.name(i))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(out)
}

// sync makes node i's filter what its links say: the reader first, so
// that no packet is queued with nobody to take it, then the rules, and a
// reader no longer needed closed last.
func (fw *firewall) sync(ctx context.Context, i int) error {
	pid, err := fw.pid(ctx, i)
	if err != nil {
		return err
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	table, slow := fw.rules(i)
	if q := fw.readers[i]; q != nil && fw.pids[i] != pid {
		fw.closeReader(i) // its namespace is gone with the process
	}
	if pid == 0 {
		return nil // killed: sync again once started
	}
	if slow && fw.readers[i] == nil {
		q, err := openNFQ(pid, nfqNum, fw.em, fw.seed+uint64(i))
		if err != nil {
			return err
		}
		fw.readers[i], fw.pids[i] = q, pid
	}
	if err := restoreIn(ctx, pid, table); err != nil {
		return err
	}
	if !slow && fw.readers[i] != nil {
		fw.closeReader(i)
	}
	return nil
}

// closeReader closes node i's reader; fw.mu is held.
func (fw *firewall) closeReader(i int) {
	q := fw.readers[i]
	q.close()
	fw.prog("  node %d: slow-link queue closed after %d packets delayed, %d dropped", i, q.accepted.Load(), q.dropped.Load())
	delete(fw.readers, i)
	delete(fw.pids, i)
}

// syncAll syncs every node in nodes, reporting the first error.
func (fw *firewall) syncAll(ctx context.Context, nodes map[int]bool) error {
	var first error
	for i := range fw.top.n {
		if nodes[i] {
			if err := fw.sync(ctx, i); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// closeAll closes every reader, at the end of the run.
func (fw *firewall) closeAll() {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for i := range fw.readers {
		fw.closeReader(i)
	}
}

// restoreIn replaces the filter table in the network namespace of pid.
func restoreIn(ctx context.Context, pid int, table string) error {
	cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(pid), "-n", "iptables-restore")
	cmd.Stdin = strings.NewReader(table)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: nsenter -t %d -n iptables-restore: %v: %s", ErrDocker, pid, err, strings.TrimSpace(errb.String()))
	}
	return nil
}

// cut marks the links of cuts as partitioned and returns the nodes whose
// filters change.
func (t *topology) cut(cuts [][2]int) map[int]bool {
	touched := map[int]bool{}
	for _, c := range cuts {
		t.links[pair(c[0], c[1])].cut = true
		touched[c[0]], touched[c[1]] = true, true
	}
	return touched
}

// heal marks every link whole again and returns the nodes whose filters
// change.
func (t *topology) heal() map[int]bool {
	touched := map[int]bool{}
	for k, l := range t.links {
		if l.cut {
			l.cut = false
			touched[k[0]], touched[k[1]] = true, true
		}
	}
	return touched
}

// slow marks the links of ls slow, each at its first end that is running
// (up(i)), and returns the nodes whose filters change.
func (t *topology) slow(ls [][2]int, up func(int) bool) map[int]bool {
	touched := map[int]bool{}
	for _, p := range ls {
		k := pair(p[0], p[1])
		end := k[0]
		if !up(end) {
			end = k[1]
		}
		t.links[k].slowEnd = end
		touched[end] = true
	}
	return touched
}

// unslow makes every slow link fast again.
func (t *topology) unslow() map[int]bool {
	touched := map[int]bool{}
	for _, l := range t.links {
		if l.slowEnd >= 0 {
			touched[l.slowEnd] = true
			l.slowEnd = -1
		}
	}
	return touched
}

// filtered reports whether node i's filter has any rule, so that a start
// or restart knows whether its new namespace needs them.
func (t *topology) filtered(i int) bool {
	for k, l := range t.links {
		if (l.cut && (k[0] == i || k[1] == i)) || l.slowEnd == i {
			return true
		}
	}
	return false
}
