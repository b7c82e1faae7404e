package main

import (
	"cmp"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
	ae "github.com/gossipmesh/gossipmesh/sync/antientropy"
	"github.com/gossipmesh/gossipmesh/sync/merkle"
)

func init() {
	register("sync", "anti-entropy reconciliation bytes and round trips vs the lower bound", runSync)
}

// syncResult is the JSON summary of meshbench sync.
type syncResult struct {
	Keys            int     `json:"keys"`
	Diff            int     `json:"diff"`
	Mode            string  `json:"mode"`
	Clustered       bool    `json:"clustered"`
	Seed            uint64  `json:"seed"`
	RecordBytes     int     `json:"record_bytes"`
	BytesAToB       int     `json:"bytes_a_to_b"`
	BytesBToA       int     `json:"bytes_b_to_a"`
	MetadataBytes   int     `json:"metadata_bytes"`
	PayloadBytes    int     `json:"payload_bytes"`
	RoundTrips      int     `json:"round_trips"`
	Frames          int     `json:"frames"`
	LowerBoundBytes int     `json:"lower_bound_bytes"`
	Ratio           float64 `json:"ratio"`
	FullStateBytes  int     `json:"full_state_bytes"`
	RatioFullState  float64 `json:"ratio_full_state"`
	BuildMS         float64 `json:"build_ms"`
	SessionMS       float64 `json:"session_ms"`
	Converged       bool    `json:"converged"`
}

func runSync(args []string) error {
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	keys := fs.Int("keys", 1_000_000, "keys in the union of the two replicas")
	diff := fs.Int("diff", 100, "keys that differ between the replicas")
	clustered := fs.Bool("clustered", false, "differing keys adjacent in key-hash order (default: scattered)")
	valueBytes := fs.Int("value-bytes", 100, "value bytes per key; the encoded state adds 21 bytes of register metadata")
	keyBytes := fs.Int("key-bytes", 32, "bytes per key")
	mode := fs.String("mode", "missing", "how keys differ: missing (alternately only on A or only on B: one record each), update (both hold different states: two records each), mixed")
	seed := fs.Uint64("seed", 1, "random seed")
	frame := fs.Int("max-frame-bytes", ae.DefaultConfig().MaxFrameBytes, "session frame size limit")
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
	}
	rng := rand.New(rand.NewPCG(*seed, 0x6d657368))
	stateBytes := *valueBytes + 21
	fmt.Printf("generating %d keys (%d-byte keys, %d-byte states), %d %s differences, seed %d\n",
		*keys, *keyBytes, stateBytes, *diff, *mode, *seed)

	base := make(map[string][]byte, *keys)
	all := make([]string, 0, *keys)
	for len(all) < *keys {
		k := string(randBytes(rng, *keyBytes))
		if _, dup := base[k]; dup {
			continue
		}
		base[k] = randBytes(rng, stateBytes)
		all = append(all, k)
	}
	var diffKeys []string
	if *clustered {
		slices.SortFunc(all, func(x, y string) int {
			return cmp.Compare(merkle.KeyHash([]byte(x)), merkle.KeyHash([]byte(y)))
		})
		start := rng.IntN(*keys - *diff + 1)
		diffKeys = all[start : start+*diff]
	} else {
		for _, i := range rng.Perm(*keys)[:*diff] {
			diffKeys = append(diffKeys, all[i])
		}
	}
	a, b := base, maps.Clone(base)
	for i, k := range diffKeys {
		m := *mode
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
	want := maps.Clone(a)
	for k, v := range b {
		if old, ok := want[k]; ok {
			v = ae.MaxMerge(old, v)
		}
		want[k] = v
	}

	ra, rb := ae.NewMemReplica(ae.MaxMerge), ae.NewMemReplica(ae.MaxMerge)
	type kd struct {
		k []byte
		d crdt.Digest
	}
	t0 := time.Now()
	digests := make([]kd, 0, len(a))
	for k, v := range a {
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
	buildMS := float64(time.Since(t0).Microseconds()) / 1000
	digests = nil
	ra.LoadTree(0, a, ta)
	rb.Load(0, b)
	fmt.Printf("tree build of %d keys: %.1f ms (plus %.1f ms to digest the states)\n", len(a), buildMS, digestMS)

	res := syncResult{Keys: *keys, Diff: *diff, Mode: *mode, Clustered: *clustered, Seed: *seed,
		RecordBytes: *keyBytes + stateBytes, BuildMS: buildMS}
	t0 = time.Now()
	turns, err := runSession(ae.Config{MaxFrameBytes: *frame}, ra, rb, &res)
	if err != nil {
		return err
	}
	res.SessionMS = float64(time.Since(t0).Microseconds()) / 1000
	res.RoundTrips = (turns + 1) / 2

	res.Converged = ra.Tree(0).Root() == rb.Tree(0).Root() && ra.Tree(0).Len() == len(want)
	for k, v := range want {
		if sa, _ := ra.State(0, []byte(k)); string(sa) != string(v) {
			res.Converged = false
			break
		}
	}
	// Lower bound: every differing key's record once, plus naming which D of
	// the N keys differ.
	lb := float64(*diff*res.RecordBytes) + log2Binomial(*keys, *diff)/8
	res.LowerBoundBytes = int(math.Ceil(lb))
	total := res.BytesAToB + res.BytesBToA
	if lb > 0 {
		res.Ratio = float64(total) / lb
	}
	res.FullStateBytes = (len(a) + len(b)) * res.RecordBytes
	res.RatioFullState = float64(total) / float64(res.FullStateBytes)

	fmt.Printf("bytes A->B %d, B->A %d (metadata %d, payload %d) in %d round trips, %d frames\n",
		res.BytesAToB, res.BytesBToA, res.MetadataBytes, res.PayloadBytes, res.RoundTrips, res.Frames)
	fmt.Printf("lower bound %d bytes: ratio %.3f; full-state exchange %d bytes: ratio %.5f\n",
		res.LowerBoundBytes, res.Ratio, res.FullStateBytes, res.RatioFullState)
	fmt.Printf("session %.1f ms, converged %v\n", res.SessionMS, res.Converged)
	if err := printJSON(res); err != nil {
		return err
	}
	if !res.Converged {
		return fmt.Errorf("replicas did not converge")
	}
	return nil
}

// runSession drives the two sides in memory, as node would over a stream,
// counting encoded bytes each way and payload (key + state) bytes.
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
				res.BytesAToB += len(buf)
			} else {
				res.BytesBToA += len(buf)
			}
			for _, r := range m.Records {
				res.PayloadBytes += len(r.Key) + len(r.State)
			}
			res.Frames++
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
	res.MetadataBytes = res.BytesAToB + res.BytesBToA - res.PayloadBytes
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
