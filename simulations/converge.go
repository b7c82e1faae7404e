package simulations

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/node"
	"github.com/libp2p/go-libp2p/core/peer"
)

// pollEvery is how often convergence is checked. It bounds the error of the
// measured convergence time.
const pollEvery = 20 * time.Millisecond

// rootsOf returns node n's per-partition Merkle roots as one comparable
// string.
func rootsOf(ctx context.Context, n *node.Node) (string, error) {
	st, err := n.Status(ctx)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, p := range st.Partitions {
		fmt.Fprintf(&b, "%d:%x,", p.Partition, p.Root)
	}
	return b.String(), nil
}

// Agreement counts, over each node's roots as one comparable string ("" for
// a node that did not answer), how many nodes hold the most common roots
// and how many did not answer. Both backends judge convergence by it.
func Agreement(roots []string) (agree, down int) {
	counts := map[string]int{}
	for _, rs := range roots {
		if rs == "" {
			down++
			continue
		}
		counts[rs]++
		agree = max(agree, counts[rs])
	}
	return agree, down
}

// awaitConvergence polls until every node is up and all report the same
// roots, and returns when that was first seen (offset from the start).
// Equal roots are what the design defines as convergence; finalStates then
// confirms the values are equal too.
func (r *run) awaitConvergence(ctx context.Context, quiet time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(r.cfg.Timeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	lastReport := time.Now()
	for {
		if r.c.replication > 0 {
			at, err := r.shardedSettled(ctx)
			if err == nil {
				return at, nil
			}
			if time.Since(lastReport) >= time.Second {
				lastReport = time.Now()
				r.progress("t=%v placement not settled: %v", at.Round(time.Millisecond), err)
			}
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("%w: %v, %v after quiescence", ErrNotConverged, err, (r.since() - quiet).Round(time.Millisecond))
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-tick.C:
			}
			continue
		}
		roots := make([]string, len(r.c.nodes))
		// Ask every node at once: a sequential scan of a large, busy mesh
		// takes long enough to blur the convergence time.
		parallel(len(r.c.nodes), func(i int) {
			if n := r.c.nodes[i].current(); n != nil {
				if rs, err := rootsOf(ctx, n); err == nil {
					roots[i] = rs
				}
			}
		})
		// The scan's end, not its start, is when every answer was in: the
		// reported time is an upper bound by at most one scan.
		at := r.since()
		total := len(r.c.nodes)
		agree, down := Agreement(roots)
		if down == 0 && agree == total {
			return at, nil
		}
		if time.Since(lastReport) >= time.Second {
			lastReport = time.Now()
			r.progress("t=%v %d/%d nodes agree on the most common roots (%d down)", at.Round(time.Millisecond), agree, total, down)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%w: %d/%d nodes agree, %d down, %v after quiescence", ErrNotConverged, agree, total, down, (r.since() - quiet).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
	}
}

// shardedSettled is convergence under placement: every node is up and has
// handed off every write it took for partitions it does not hold; each
// partition is held by exactly min(R, N) nodes, which all name the same
// holders and report the same root; and no node still stores data of a
// partition it does not hold (handover is done). It returns the time of the
// observation, and why it is not settled otherwise.
func (r *run) shardedSettled(ctx context.Context) (time.Duration, error) {
	sts := make([]*node.Status, len(r.c.nodes))
	parallel(len(r.c.nodes), func(i int) {
		if n := r.c.nodes[i].current(); n != nil {
			if st, err := n.Status(ctx); err == nil {
				sts[i] = &st
			}
		}
	})
	at := r.since()
	want := min(r.c.replication, len(r.c.nodes))
	type holding struct {
		nodes   []peer.ID
		named   []peer.ID
		root    string
		differs bool
	}
	held := make([]holding, r.cfg.Partitions)
	for i, st := range sts {
		if st == nil {
			return at, fmt.Errorf("node %d is down", i)
		}
		if st.Hints > 0 {
			return at, fmt.Errorf("node %d has %d writes not handed off yet", i, st.Hints)
		}
		for _, ps := range st.Partitions {
			if !ps.Held {
				if ps.Keys > 0 {
					return at, fmt.Errorf("node %d still stores %d keys of partition %d it no longer holds", i, ps.Keys, ps.Partition)
				}
				continue
			}
			h := &held[ps.Partition]
			root := fmt.Sprintf("%x", ps.Root)
			if len(h.nodes) == 0 {
				h.named, h.root = ps.Holders, root
			} else if !slices.Equal(h.named, ps.Holders) {
				return at, fmt.Errorf("holders of partition %d disagree on who holds it", ps.Partition)
			} else if h.root != root {
				h.differs = true
			}
			h.nodes = append(h.nodes, st.PeerID)
		}
	}
	for p, h := range held {
		slices.Sort(h.nodes)
		switch {
		case len(h.nodes) != want:
			return at, fmt.Errorf("partition %d held by %d nodes, want %d", p, len(h.nodes), want)
		case !slices.Equal(h.nodes, h.named):
			return at, fmt.Errorf("partition %d: the nodes holding it are not the holders they name", p)
		case h.differs:
			return at, fmt.Errorf("holders of partition %d disagree on its root", p)
		}
	}
	return at, nil
}

// finalStates reads every node's states, checks that every copy of a key is
// identical (on every node, or under placement on every holder), and
// returns them decoded.
func (r *run) finalStates(ctx context.Context) (map[string]crdt.State, error) {
	if r.c.replication > 0 {
		return r.shardedStates(ctx)
	}
	var ref map[string][]byte
	for i, s := range r.c.nodes {
		n := s.current()
		if n == nil {
			return nil, fmt.Errorf("%w: node %d is down", ErrNotConverged, i)
		}
		states := map[string][]byte{}
		for rec, err := range n.ExportStates(ctx) {
			if err != nil {
				return nil, fmt.Errorf("simulations: export node %d: %w", i, err)
			}
			states[string(rec.Key)] = bytes.Clone(rec.State)
		}
		if ref == nil {
			ref = states
			continue
		}
		if len(states) != len(ref) {
			return nil, fmt.Errorf("%w: roots equal but node %d holds %d keys, node 0 %d", ErrNotConverged, i, len(states), len(ref))
		}
		for k, v := range ref {
			if !bytes.Equal(states[k], v) {
				return nil, fmt.Errorf("%w: roots equal but node %d's state of %q differs from node 0's", ErrNotConverged, i, k)
			}
		}
	}
	out := make(map[string]crdt.State, len(ref))
	for k, v := range ref {
		st, err := crdt.Decode(v)
		if err != nil {
			return nil, fmt.Errorf("simulations: decode %q: %w", k, err)
		}
		out[k] = st
	}
	return out, nil
}

// shardedStates gathers every key from its holders, checking that each has
// exactly min(R, N) copies and that they are equal.
func (r *run) shardedStates(ctx context.Context) (map[string]crdt.State, error) {
	want := min(r.c.replication, len(r.c.nodes))
	copies := map[string][][]byte{}
	for i, s := range r.c.nodes {
		n := s.current()
		if n == nil {
			return nil, fmt.Errorf("%w: node %d is down", ErrNotConverged, i)
		}
		for rec, err := range n.ExportStates(ctx) {
			if err != nil {
				return nil, fmt.Errorf("simulations: export node %d: %w", i, err)
			}
			copies[string(rec.Key)] = append(copies[string(rec.Key)], bytes.Clone(rec.State))
		}
	}
	out := make(map[string]crdt.State, len(copies))
	for k, cs := range copies {
		if len(cs) != want {
			return nil, fmt.Errorf("%w: %q has %d copies, want %d", ErrNotConverged, k, len(cs), want)
		}
		for _, c := range cs[1:] {
			if !bytes.Equal(c, cs[0]) {
				return nil, fmt.Errorf("%w: roots equal but the copies of %q differ", ErrNotConverged, k)
			}
		}
		st, err := crdt.Decode(cs[0])
		if err != nil {
			return nil, fmt.Errorf("simulations: decode %q: %w", k, err)
		}
		out[k] = st
	}
	return out, nil
}

// peakRSS is the process's peak resident set size (Linux VmHWM), or 0 when
// it cannot be read.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}
