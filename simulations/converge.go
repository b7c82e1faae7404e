package simulations

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/node"
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
		agree, total, down := 0, len(r.c.nodes), 0
		counts := map[string]int{}
		for _, rs := range roots {
			if rs == "" {
				down++
				continue
			}
			counts[rs]++
			agree = max(agree, counts[rs])
		}
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

// finalStates reads every node's states, checks they are identical, and
// returns them decoded.
func (r *run) finalStates(ctx context.Context) (map[string]crdt.State, error) {
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
