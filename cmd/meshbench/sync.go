package main

import (
	"cmp"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/node"
	ae "github.com/gossipmesh/gossipmesh/sync/antientropy"
	"github.com/gossipmesh/gossipmesh/sync/merkle"
)

func init() {
	register("sync", "anti-entropy reconciliation bytes and round trips vs the lower bound", runSync)
}

// syncResult is the JSON summary of meshbench sync. The DESIGN fields
// (bytes_a_to_b, bytes_b_to_a, metadata_bytes, payload_bytes, round_trips,
// ratio, ratio_full_state) count what a node puts on the wire: the hello
// each way, the session over the node's partition layout, every frame
// with its length prefix and flag, compressed as the node compresses it.
// The pure_* fields are the bare session over one partition, messages
// encoded without frames, as this benchmark counted before.
type syncResult struct {
	Keys               int     `json:"keys"`
	Diff               int     `json:"diff"`
	Mode               string  `json:"mode"`
	Clustered          bool    `json:"clustered"`
	Seed               uint64  `json:"seed"`
	Algo               string  `json:"algo"`
	Partitions         int     `json:"partitions"`
	RecordBytes        int     `json:"record_bytes"`
	BytesAToB          int     `json:"bytes_a_to_b"`
	BytesBToA          int     `json:"bytes_b_to_a"`
	WireBytesTotal     int     `json:"wire_bytes_total"`
	HelloBytes         int     `json:"hello_bytes"` // both ways, included in the totals
	MetadataBytes      int     `json:"metadata_bytes"`
	PayloadBytes       int     `json:"payload_bytes"` // keys and states of the records sent, before compression
	NeededPayloadBytes int     `json:"needed_payload_bytes"`
	RecordsSent        int     `json:"records_sent"`
	RecordsNeeded      int     `json:"records_needed"` // one per differing key: its merged state, to the side lacking it
	RoundTrips         int     `json:"round_trips"`    // the hello's, then the session's
	Frames             int     `json:"frames"`
	LowerBoundBytes    int     `json:"lower_bound_bytes"`
	Ratio              float64 `json:"ratio"`
	FullStateBytes     int     `json:"full_state_bytes"`
	RatioFullState     float64 `json:"ratio_full_state"`
	CPUMS              float64 `json:"cpu_ms"` // process CPU time of the wire session, both sides
	CPUMSA             float64 `json:"cpu_ms_a"`
	CPUMSB             float64 `json:"cpu_ms_b"`
	SessionMS          float64 `json:"session_ms"`
	PureBytesAToB      int     `json:"pure_bytes_a_to_b"`
	PureBytesBToA      int     `json:"pure_bytes_b_to_a"`
	PureBytesTotal     int     `json:"pure_bytes_total"`
	PureMetadataBytes  int     `json:"pure_metadata_bytes"`
	PurePayloadBytes   int     `json:"pure_payload_bytes"`
	PureRoundTrips     int     `json:"pure_round_trips"`
	PureFrames         int     `json:"pure_frames"`
	PureRatio          float64 `json:"pure_ratio"`
	PureCPUMS          float64 `json:"pure_cpu_ms"`
	BuildMS            float64 `json:"build_ms"`
	Converged          bool    `json:"converged"`
}

// syncData is the benchmark's two replicas, before any session.
type syncData struct {
	a, b   map[string][]byte
	want   map[string][]byte // the join of both
	needed [2]int            // records and bytes the sides must exchange at least
}

func runSync(args []string) error {
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	keys := fs.Int("keys", 1_000_000, "keys in the union of the two replicas")
	diff := fs.Int("diff", 100, "keys that differ between the replicas")
	clustered := fs.Bool("clustered", false, "differing keys adjacent in key-hash order (default: scattered)")
	valueBytes := fs.Int("value-bytes", 100, "value bytes per key; the encoded state adds 21 bytes of register metadata")
	keyBytes := fs.Int("key-bytes", 32, "bytes per key")
	mode := fs.String("mode", "missing", "how keys differ: missing (alternately only on A or only on B: one record each), update (both hold different states: one or two records each), mixed")
	seed := fs.Uint64("seed", 1, "random seed")
	algo := fs.String("algo", "auto", "reconciliation: auto (what the node runs: merkle today) or merkle; sketch (a rateless sketch, issue 21) is not built yet and is refused")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *keys < 1 || *diff < 0 || *diff > *keys:
		return fmt.Errorf("need 0 <= --diff <= --keys and --keys >= 1")
	case *keyBytes < 8 || *keyBytes > ae.MaxKeyBytes || *valueBytes < 0:
		return fmt.Errorf("need 8 <= --key-bytes <= %d and --value-bytes >= 0", ae.MaxKeyBytes)
	case *mode != "missing" && *mode != "update" && *mode != "mixed":
		return fmt.Errorf("unknown --mode %q", *mode)
	case *algo == "sketch":
		return fmt.Errorf("--algo sketch: the rateless sketch is not built yet; use auto or merkle")
	case *algo != "auto" && *algo != "merkle":
		return fmt.Errorf("unknown --algo %q: want auto or merkle", *algo)
	}
	cfg := node.DefaultConfig()
	stateBytes := *valueBytes + 21
	fmt.Printf("generating %d keys (%d-byte keys, %d-byte states), %d %s differences, seed %d\n",
		*keys, *keyBytes, stateBytes, *diff, *mode, *seed)
	d := makeSyncData(rand.New(rand.NewPCG(*seed, 0x6d657368)), *keys, *diff, *keyBytes, stateBytes, *mode, *clustered)
	res := syncResult{Keys: *keys, Diff: *diff, Mode: *mode, Clustered: *clustered, Seed: *seed, Algo: "merkle",
		Partitions: cfg.Partitions, RecordBytes: *keyBytes + stateBytes,
		RecordsNeeded: d.needed[0], NeededPayloadBytes: d.needed[1]}
	// Lower bound: every differing key's record once, plus naming which D of
	// the N keys differ.
	lb := float64(*diff*res.RecordBytes) + log2Binomial(*keys, *diff)/8
	res.LowerBoundBytes = int(math.Ceil(lb))
	res.FullStateBytes = (len(d.a) + len(d.b)) * res.RecordBytes

	// Partitioned copies first: the pure run merges into d.a and d.b.
	wa, wb := partitioned(d.a, cfg.Partitions), partitioned(d.b, cfg.Partitions)
	if err := runPure(d, &res, lb); err != nil {
		return err
	}
	converged, err := runWire(cfg, wa, wb, d.want, &res)
	if err != nil {
		return err
	}
	res.Converged = converged
	total := res.BytesAToB + res.BytesBToA
	res.WireBytesTotal = total
	if lb > 0 {
		res.Ratio = float64(total) / lb
	}
	res.RatioFullState = float64(total) / float64(res.FullStateBytes)

	fmt.Printf("wire: A->B %d, B->A %d bytes (hello %d, metadata %d, payload %d) in %d round trips, %d frames, %d partitions\n",
		res.BytesAToB, res.BytesBToA, res.HelloBytes, res.MetadataBytes, res.PayloadBytes, res.RoundTrips, res.Frames, res.Partitions)
	fmt.Printf("pure (one partition, no frames): A->B %d, B->A %d bytes (metadata %d, payload %d) in %d round trips\n",
		res.PureBytesAToB, res.PureBytesBToA, res.PureMetadataBytes, res.PurePayloadBytes, res.PureRoundTrips)
	fmt.Printf("records sent %d, needed %d (%d payload bytes needed)\n", res.RecordsSent, res.RecordsNeeded, res.NeededPayloadBytes)
	fmt.Printf("lower bound %d bytes: ratio %.3f (pure %.3f); full-state exchange %d bytes: ratio %.5f\n",
		res.LowerBoundBytes, res.Ratio, res.PureRatio, res.FullStateBytes, res.RatioFullState)
	fmt.Printf("session %.1f ms, CPU %.1f ms (A %.1f, B %.1f), converged %v\n", res.SessionMS, res.CPUMS, res.CPUMSA, res.CPUMSB, res.Converged)
	if err := printJSON(res); err != nil {
		return err
	}
	if !res.Converged {
		return fmt.Errorf("replicas did not converge")
	}
	return nil
}

// makeSyncData builds replica A of n keys and B differing from it in diff
// keys, the way mode says.
func makeSyncData(rng *rand.Rand, n, diff, keyBytes, stateBytes int, mode string, clustered bool) syncData {
	base := make(map[string][]byte, n)
	all := make([]string, 0, n)
	for len(all) < n {
		k := string(randBytes(rng, keyBytes))
		if _, dup := base[k]; dup {
			continue
		}
		base[k] = randBytes(rng, stateBytes)
		all = append(all, k)
	}
	var diffKeys []string
	if clustered {
		slices.SortFunc(all, func(x, y string) int {
			return cmp.Compare(merkle.KeyHash([]byte(x)), merkle.KeyHash([]byte(y)))
		})
		start := rng.IntN(n - diff + 1)
		diffKeys = all[start : start+diff]
	} else {
		for _, i := range rng.Perm(n)[:diff] {
			diffKeys = append(diffKeys, all[i])
		}
	}
	a, b := base, maps.Clone(base)
	for i, k := range diffKeys {
		m := mode
		if m == "mixed" {
			m = []string{"missing", "update"}[rng.IntN(2)]
		}
		if m == "update" {
			b[k] = randBytes(rng, stateBytes)
		} else if i%2 == 0 {
			delete(b, k)
		} else {
			delete(a, k)
		}
	}
	d := syncData{a: a, b: b, want: maps.Clone(a)}
	for k, v := range b {
		if old, ok := d.want[k]; ok {
			v = ae.MaxMerge(old, v)
		}
		d.want[k] = v
	}
	for _, k := range diffKeys {
		d.needed[0]++
		d.needed[1] += len(k) + len(d.want[k])
	}
	return d
}

// partitioned splits states over the node's partitions, as a node stores
// them.
func partitioned(states map[string][]byte, partitions int) []map[string][]byte {
	out := make([]map[string][]byte, partitions)
	for i := range out {
		out[i] = make(map[string][]byte, len(states)/partitions+1)
	}
	for k, v := range states {
		out[node.PartitionOf([]byte(k), partitions)][k] = v
	}
	return out
}

// runPure runs the bare session over one partition holding every key,
// counting encoded messages.
func runPure(d syncData, res *syncResult, lb float64) error {
	type kd struct {
		k []byte
		d crdt.Digest
	}
	t0 := time.Now()
	digests := make([]kd, 0, len(d.a))
	for k, v := range d.a {
		digests = append(digests, kd{[]byte(k), crdt.DigestOf(v)})
	}
	digestMS := float64(time.Since(t0).Microseconds()) / 1000
	t0 = time.Now()
	ta := merkle.Build(func(yield func([]byte, crdt.Digest) bool) {
		for _, e := range digests {
			if !yield(e.k, e.d) {
				return
			}
		}
	})
	res.BuildMS = float64(time.Since(t0).Microseconds()) / 1000
	ra, rb := ae.NewMemReplica(ae.MaxMerge), ae.NewMemReplica(ae.MaxMerge)
	ra.LoadTree(0, d.a, ta)
	rb.Load(0, d.b)
	fmt.Printf("tree build of %d keys: %.1f ms (plus %.1f ms to digest the states)\n", len(d.a), res.BuildMS, digestMS)
	runtime.GC() // the garbage of building the replicas is not the session's CPU
	cpu0 := cpuTime()
	turns, err := runSession(ae.DefaultConfig(), ra, rb, res)
	if err != nil {
		return err
	}
	res.PureCPUMS = ms(cpuTime() - cpu0)
	res.PureRoundTrips = (turns + 1) / 2
	res.PureBytesTotal = res.PureBytesAToB + res.PureBytesBToA
	if lb > 0 {
		res.PureRatio = float64(res.PureBytesTotal) / lb
	}
	if ra.Tree(0).Root() != rb.Tree(0).Root() || !holds(ra, 0, d.want) {
		return fmt.Errorf("pure session: replicas did not converge")
	}
	return nil
}

// holds reports whether partition p of r holds exactly want.
func holds(r *ae.MemReplica, p uint32, want map[string][]byte) bool {
	if r.Tree(p).Len() != len(want) {
		return false
	}
	for k, v := range want {
		if st, _ := r.State(p, []byte(k)); string(st) != string(v) {
			return false
		}
	}
	return true
}

// runSession drives the two sides in memory, counting encoded bytes each
// way and payload (key + state) bytes.
func runSession(cfg ae.Config, ra, rb *ae.MemReplica, res *syncResult) (turns int, err error) {
	sa, out, err := ae.Start(cfg, ra, []uint32{0})
	if err != nil {
		return 0, err
	}
	sb, err := ae.Accept(cfg, rb)
	if err != nil {
		return 0, err
	}
	sessions := [2]*ae.Session{sa, sb}
	reps := [2]*ae.MemReplica{ra, rb}
	var inbox [2][][]byte
	send := func(from int, msgs []ae.Message) error {
		if len(msgs) > 0 {
			turns++
		}
		for _, m := range msgs {
			buf, err := ae.AppendMessage(nil, m)
			if err != nil {
				return err
			}
			if from == 0 {
				res.PureBytesAToB += len(buf)
			} else {
				res.PureBytesBToA += len(buf)
			}
			for _, r := range m.Records {
				res.PurePayloadBytes += len(r.Key) + len(r.State)
			}
			res.PureFrames++
			inbox[1-from] = append(inbox[1-from], buf)
		}
		return nil
	}
	if err := send(0, out.Send); err != nil {
		return 0, err
	}
	for len(inbox[0])+len(inbox[1]) > 0 {
		to := 1
		if len(inbox[1]) == 0 {
			to = 0
		}
		buf := inbox[to][0]
		inbox[to] = inbox[to][1:]
		m, err := ae.DecodeMessage(buf, cfg.MaxFrameBytes)
		if err != nil {
			return 0, err
		}
		out, err := sessions[to].Step(m)
		if err != nil {
			return 0, err
		}
		for _, r := range out.Store {
			reps[to].Apply(r)
		}
		if err := send(to, out.Send); err != nil {
			return 0, err
		}
	}
	if !sa.Done() || !sb.Done() {
		return 0, fmt.Errorf("session did not finish")
	}
	res.PureMetadataBytes = res.PureBytesAToB + res.PureBytesBToA - res.PurePayloadBytes
	return turns, nil
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := i; j < min(i+8, n); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
	return b
}

// log2Binomial returns log2(C(n, k)).
func log2Binomial(n, k int) float64 {
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x) + 1); return v }
	return (lg(n) - lg(k) - lg(n-k)) / math.Ln2
}
