package main

import (
	"fmt"
	"runtime"
	"time"

	"github.com/gossipmesh/gossipmesh/node"
	ae "github.com/gossipmesh/gossipmesh/sync/antientropy"
	"github.com/gossipmesh/gossipmesh/sync/merkle"
)

// wireRun is a session between two replicas over the node's wire: the
// partition layout, the hello each way, and every message framed as the
// node frames it.
type wireRun struct {
	cfg   node.Config
	reps  [2]*ae.MemReplica
	wires [2]*node.SyncWire // wires[i] carries what side i sends
	queue [2]int            // frames on their way to side i
	cpu   [2]time.Duration
	turns int
	res   *syncResult
}

// runWire runs the session the node runs between replicas a and b (one
// map per partition) and reports whether both ended holding want.
func runWire(cfg node.Config, a, b []map[string][]byte, want map[string][]byte, res *syncResult) (bool, error) {
	w := &wireRun{cfg: cfg, res: res}
	parts := make([]uint32, cfg.Partitions)
	for i, states := range [2][]map[string][]byte{a, b} {
		w.reps[i] = ae.NewMemReplica(ae.MaxMerge)
		for p := range parts {
			parts[p] = uint32(p)
			w.reps[i].Load(uint32(p), states[p])
		}
		var err error
		if w.wires[i], err = node.NewSyncWire(cfg); err != nil {
			return false, err
		}
		defer w.wires[i].Close()
	}
	runtime.GC() // the garbage of building the replicas is not the session's CPU
	t0 := time.Now()
	if err := w.hellos(); err != nil {
		return false, err
	}
	if err := w.session(parts); err != nil {
		return false, err
	}
	res.SessionMS = ms(time.Since(t0))
	res.CPUMSA, res.CPUMSB = ms(w.cpu[0]), ms(w.cpu[1])
	res.CPUMS = ms(w.cpu[0] + w.cpu[1])
	res.RoundTrips = 1 + (w.turns+1)/2 // the hello's, then the session's turns
	res.MetadataBytes = res.BytesAToB + res.BytesBToA - res.PayloadBytes
	return w.converged(want), nil
}

// timed runs f on behalf of side i, adding its CPU time to the side's.
func (w *wireRun) timed(i int, f func() error) error {
	c0 := cpuTime()
	err := f()
	w.cpu[i] += cpuTime() - c0
	return err
}

// hellos sends each side's hello, with its partition roots, and reads the
// peer's, as both nodes do before the session.
func (w *wireRun) hellos() error {
	for i := range 2 {
		err := w.timed(i, func() error {
			roots := make([]merkle.Hash, w.cfg.Partitions)
			for p := range roots {
				roots[p] = w.reps[i].Tree(uint32(p)).Root()
			}
			n, err := w.wires[i].WriteHello(w.cfg, roots)
			w.count(i, n)
			w.res.HelloBytes += n
			return err
		})
		if err != nil {
			return err
		}
	}
	for i := range 2 {
		if err := w.timed(1-i, func() error { _, err := w.wires[i].ReadHello(w.cfg); return err }); err != nil {
			return fmt.Errorf("hello: %w", err)
		}
	}
	return nil
}

func (w *wireRun) count(from, n int) {
	if from == 0 {
		w.res.BytesAToB += n
	} else {
		w.res.BytesBToA += n
	}
}

// send frames side from's messages onto its wire.
func (w *wireRun) send(from int, msgs []ae.Message) error {
	if len(msgs) > 0 {
		w.turns++
	}
	for _, m := range msgs {
		buf, err := ae.AppendMessage(nil, m)
		if err != nil {
			return err
		}
		n, err := w.wires[from].Write(buf)
		if err != nil {
			return err
		}
		w.count(from, n)
		for _, r := range m.Records {
			w.res.PayloadBytes += len(r.Key) + len(r.State)
		}
		w.res.RecordsSent += len(m.Records)
		w.res.Frames++
		w.queue[1-from]++
	}
	return nil
}

// session runs the anti-entropy session over parts: each side reads a
// frame off its peer's wire, steps, merges and frames its answer.
func (w *wireRun) session(parts []uint32) error {
	scfg := node.SyncConfig(w.cfg)
	var sessions [2]*ae.Session
	err := w.timed(0, func() error {
		s, out, err := ae.Start(scfg, w.reps[0], parts)
		sessions[0] = s
		if err == nil {
			err = w.send(0, out.Send)
		}
		return err
	})
	if err != nil {
		return err
	}
	if sessions[1], err = ae.Accept(scfg, w.reps[1]); err != nil {
		return err
	}
	for w.queue[0]+w.queue[1] > 0 {
		to := 1
		if w.queue[1] == 0 {
			to = 0
		}
		w.queue[to]--
		err := w.timed(to, func() error {
			buf, err := w.wires[1-to].Read()
			if err != nil {
				return err
			}
			m, err := ae.DecodeMessage(buf, scfg.MaxFrameBytes)
			if err != nil {
				return err
			}
			out, err := sessions[to].Step(m)
			if err != nil {
				return err
			}
			for _, r := range out.Store {
				w.reps[to].Apply(r)
			}
			return w.send(to, out.Send)
		})
		if err != nil {
			return err
		}
	}
	if !sessions[0].Done() || !sessions[1].Done() {
		return fmt.Errorf("session did not finish")
	}
	return nil
}

// converged reports whether both sides hold exactly want, with equal roots.
func (w *wireRun) converged(want map[string][]byte) bool {
	n := 0
	for p := range w.cfg.Partitions {
		ta, tb := w.reps[0].Tree(uint32(p)), w.reps[1].Tree(uint32(p))
		if ta.Root() != tb.Root() {
			return false
		}
		n += ta.Len()
	}
	if n != len(want) {
		return false
	}
	for k, v := range want {
		p := node.PartitionOf([]byte(k), w.cfg.Partitions)
		for _, r := range w.reps {
			if st, _ := r.State(p, []byte(k)); string(st) != string(v) {
				return false
			}
		}
	}
	return true
}
