package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	gosync "sync"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/node/backup"
	"github.com/gossipmesh/gossipmesh/node/httpapi"
	"github.com/gossipmesh/gossipmesh/simulations"
)

// pollEvery is how often convergence is checked; it bounds the error of
// the measured convergence time.
const pollEvery = 50 * time.Millisecond

// awaitConvergence polls GET /v1/status on every node until all answer
// with the same per-partition roots (under placement: until placement has
// settled, see settled), and returns when that was first seen (offset from
// the start of the workload).
func (r *run) awaitConvergence(ctx context.Context, quiet time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(r.cfg.Timeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	lastReport := time.Now()
	for {
		sts := make([]*httpapi.StatusResponse, len(r.f.members))
		var wg gosync.WaitGroup
		for i, m := range r.f.members {
			wg.Go(func() {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				if st, err := m.api.status(cctx); err == nil {
					sts[i] = &st
				}
			})
		}
		wg.Wait()
		at := r.since()
		why := r.unsettled(sts)
		if why == "" {
			return at, nil
		}
		if time.Since(lastReport) >= time.Second {
			lastReport = time.Now()
			r.progress("t=%v %s", at.Round(time.Millisecond), why)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%w: %s, %v after quiescence", simulations.ErrNotConverged, why, (r.since() - quiet).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
	}
}

// unsettled says why the nodes' statuses (nil: not answering) are not
// converged, or "" when they are. With full replication every node must
// report the same roots. Under placement (the in-process harness's
// shardedSettled): every node answers and has handed off every write it
// took for partitions it does not hold; each partition is held by exactly
// min(R, N) nodes, which name the same holders, are those holders, and
// report the same root; and no node still stores keys of a partition it
// no longer holds.
func (r *run) unsettled(sts []*httpapi.StatusResponse) string {
	if r.cfg.Replication == 0 {
		roots := make([]string, len(sts))
		for i, st := range sts {
			if st != nil {
				roots[i] = rootString(*st)
			}
		}
		agree, down := simulations.Agreement(roots)
		if down == 0 && agree == len(roots) {
			return ""
		}
		return fmt.Sprintf("%d/%d nodes agree on the most common roots, %d not answering", agree, len(roots), down)
	}
	type holding struct {
		nodes, named []string
		root         string
		differs      bool
	}
	held := make([]holding, r.cfg.Partitions)
	for i, st := range sts {
		if st == nil {
			return fmt.Sprintf("node %d not answering", i)
		}
		if st.Hints > 0 {
			return fmt.Sprintf("node %d has %d writes not handed off yet", i, st.Hints)
		}
		for _, ps := range st.Partitions {
			if !ps.Held {
				if ps.Keys > 0 {
					return fmt.Sprintf("node %d still stores %d keys of partition %d it no longer holds", i, ps.Keys, ps.Partition)
				}
				continue
			}
			if int(ps.Partition) >= len(held) {
				return fmt.Sprintf("node %d reports partition %d of %d", i, ps.Partition, len(held))
			}
			h := &held[ps.Partition]
			named := slices.Sorted(slices.Values(ps.Holders))
			switch {
			case len(h.nodes) == 0:
				h.named, h.root = named, ps.Root
			case !slices.Equal(h.named, named):
				return fmt.Sprintf("holders of partition %d disagree on who holds it", ps.Partition)
			case h.root != ps.Root:
				h.differs = true
			}
			h.nodes = append(h.nodes, st.PeerID)
		}
	}
	want := min(r.cfg.Replication, len(sts))
	for p, h := range held {
		slices.Sort(h.nodes)
		switch {
		case len(h.nodes) != want:
			return fmt.Sprintf("partition %d held by %d nodes, want %d", p, len(h.nodes), want)
		case !slices.Equal(h.nodes, h.named):
			return fmt.Sprintf("partition %d: the nodes holding it are not the holders they name", p)
		case h.differs:
			return fmt.Sprintf("holders of partition %d disagree on its root", p)
		}
	}
	return ""
}

// finalStates fetches every node's states (POST /v1/backup) and checks
// that every copy of a key is identical: on every node, or under placement
// on each of its min(R, N) holders. It then reads every key the workload
// touched back from every node through the ordinary routes (GET kv,
// counter, set), which under placement ask the holders, and compares with
// the states. It returns the decoded states and the read-back mismatches.
func (r *run) finalStates(ctx context.Context) (map[string]crdt.State, []string, error) {
	copies := map[string][][]byte{}
	for i, m := range r.f.members {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		raw, err := m.api.backup(cctx)
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: node %d backup: %w", simulations.ErrNotConverged, i, err)
		}
		if err := backup.Read(bytes.NewReader(raw), func(rec backup.Record) error {
			copies[string(rec.Key)] = append(copies[string(rec.Key)], rec.State)
			return nil
		}); err != nil {
			return nil, nil, fmt.Errorf("%w: node %d backup: %w", ErrNode, i, err)
		}
	}
	want := len(r.f.members)
	if r.cfg.Replication > 0 {
		want = min(r.cfg.Replication, want)
	}
	final := make(map[string]crdt.State, len(copies))
	for k, cs := range copies {
		if len(cs) != want {
			return nil, nil, fmt.Errorf("%w: roots equal but %q has %d copies, want %d", simulations.ErrNotConverged, k, len(cs), want)
		}
		for _, c := range cs[1:] {
			if !bytes.Equal(c, cs[0]) {
				return nil, nil, fmt.Errorf("%w: roots equal but the copies of %q differ", simulations.ErrNotConverged, k)
			}
		}
		st, err := crdt.Decode(cs[0])
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: decode %q: %w", k, err)
		}
		final[k] = st
	}
	kinds := map[string]simulations.OpKind{}
	for _, op := range r.ops {
		kinds[op.Key] = op.Kind
	}
	keys := make([]string, 0, len(kinds))
	for k := range kinds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var mu gosync.Mutex
	var mismatches []string
	note := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		mismatches = append(mismatches, fmt.Sprintf("read back: "+format, args...))
	}
	var wg gosync.WaitGroup
	for i, m := range r.f.members {
		wg.Go(func() {
			for _, k := range keys {
				if err := readBack(ctx, m.api, k, kinds[k], final[k]); err != nil {
					note("node %d: %s: %v", i, k, err)
				}
			}
		})
	}
	wg.Wait()
	sort.Strings(mismatches)
	return final, mismatches, nil
}

// readBack reads one key through its kind's route and compares it with the
// converged state st (nil: absent).
func readBack(ctx context.Context, a api, key string, kind simulations.OpKind, st crdt.State) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch kind {
	case simulations.OpPut, simulations.OpDelete:
		got, ok, err := a.register(ctx, key)
		if err != nil {
			return err
		}
		var want []byte
		live := false
		if reg, isReg := st.(*crdt.LWW); isReg {
			want, live = reg.Value()
		}
		if ok != live || got != string(want) {
			return fmt.Errorf("got %q (present %v), state says %q (present %v)", got, ok, want, live)
		}
	case simulations.OpIncr:
		got, err := a.counter(ctx, key)
		if err != nil {
			return err
		}
		var want int64
		if c, isC := st.(*crdt.Counter); isC {
			want = c.Value()
		}
		if got != want {
			return fmt.Errorf("counter %d, state says %d", got, want)
		}
	case simulations.OpSAdd, simulations.OpSRem:
		got, err := a.members(ctx, key)
		if err != nil {
			return err
		}
		var want []string
		if s, isS := st.(*crdt.ORSet); isS {
			for _, m := range s.Members() {
				want = append(want, string(m))
			}
		}
		sort.Strings(want)
		if !slices.Equal(got, want) {
			return fmt.Errorf("members %v, state says %v", got, want)
		}
	}
	return nil
}

// writeOutputs saves the history (one JSON object per client call, in
// schedule order) and the faults as applied, as JSON lines.
func (r *run) writeOutputs(dir string) error {
	write := func(name string, n int, line func(i int) any) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		enc := json.NewEncoder(w)
		for i := range n {
			if err := enc.Encode(line(i)); err != nil {
				f.Close()
				return err
			}
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	type histLine struct {
		Seq     int    `json:"seq"`
		Node    int    `json:"node"`
		Kind    string `json:"kind"`
		Key     string `json:"key"`
		Value   string `json:"value,omitempty"`
		Delta   int64  `json:"delta,omitempty"`
		Outcome string `json:"outcome"`
		StartUS int64  `json:"start_us"`
		EndUS   int64  `json:"end_us"`
		// StampLo and StampHi: the wall-clock window (unix ns) the write's
		// timestamp lies in.
		StampLo int64  `json:"stamp_lo,omitempty"`
		StampHi int64  `json:"stamp_hi,omitempty"`
		Err     string `json:"err,omitempty"`
	}
	outcome := map[simulations.Outcome]string{simulations.Skipped: "skipped", simulations.Acked: "acked", simulations.Indeterminate: "indeterminate"}
	if err := write("history.jsonl", len(r.history), func(i int) any {
		rec := r.history[i]
		return histLine{
			Seq: rec.Op.Seq, Node: rec.Op.Node, Kind: rec.Op.Kind.String(), Key: rec.Op.Key, Value: rec.Op.Value, Delta: rec.Op.Delta,
			Outcome: outcome[rec.Outcome], StartUS: rec.Start.Microseconds(), EndUS: rec.End.Microseconds(),
			StampLo: rec.Stamp.Wall, StampHi: rec.StampMax.Wall, Err: rec.Err,
		}
	}); err != nil {
		return err
	}
	return write("faults.jsonl", len(r.applied), func(i int) any {
		f := r.applied[i]
		return struct {
			AtMS int64 `json:"at_ms"`
			Fault
		}{f.At.Milliseconds(), f}
	})
}
