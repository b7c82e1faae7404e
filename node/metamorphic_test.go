package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// metaOp is one operation of the metamorphic workload.
type metaOp struct {
	at   int // which node runs it
	kind string
	key  string
	arg  string
	n    int64
}

// metaWorkload draws a workload over registers, counters and sets.
func metaWorkload(rng *rand.Rand, count, nodes int) []metaOp {
	kinds := []string{"put", "delete", "incr", "sadd", "srem"}
	ops := make([]metaOp, count)
	for i := range ops {
		op := metaOp{at: rng.IntN(nodes), kind: kinds[rng.IntN(len(kinds))], arg: fmt.Sprintf("v%d", rng.IntN(4)), n: rng.Int64N(9) - 2}
		switch op.kind {
		case "put", "delete":
			op.key = fmt.Sprintf("r%d", rng.IntN(12))
		case "incr":
			op.key = fmt.Sprintf("c%d", rng.IntN(6))
		default:
			op.key = fmt.Sprintf("s%d", rng.IntN(6))
		}
		ops[i] = op
	}
	return ops
}

func (op metaOp) run(ctx context.Context, n *Node) error {
	k := []byte(op.key)
	switch op.kind {
	case "put":
		return n.Put(ctx, k, []byte(op.arg))
	case "delete":
		return n.Delete(ctx, k)
	case "incr":
		_, err := n.Incr(ctx, k, op.n)
		return err
	case "sadd":
		return n.SAdd(ctx, k, []byte(op.arg))
	}
	return n.SRem(ctx, k, []byte(op.arg))
}

// metaView is what a node reads of every key the workload touched.
func metaView(ctx context.Context, n *Node, ops []metaOp) (string, error) {
	keys := map[string]string{}
	for _, op := range ops {
		keys[op.key] = op.kind
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	})
	var b strings.Builder
	for _, k := range names {
		var v string
		var err error
		switch k[0] {
		case 'r':
			var raw []byte
			raw, err = n.Get(ctx, []byte(k))
			v = string(raw)
		case 'c':
			var c int64
			c, err = n.Counter(ctx, []byte(k))
			v = strconv.FormatInt(c, 10)
		default:
			var ms [][]byte
			ms, err = n.SMembers(ctx, []byte(k))
			for _, m := range ms {
				v += string(m) + ","
			}
		}
		if errors.Is(err, ErrNotFound) {
			v, err = "-", nil
		}
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s=%s ", k, v)
	}
	return b.String(), nil
}

// metaConfig is one way of running the mesh; all must end in the same view.
type metaConfig struct {
	name  string
	edit  func(t *testing.T, i int, c *Config)
	crash bool // node 0 runs on a crashable disk and crashes mid-run
}

// One seeded workload, run one operation at a time across three nodes in
// several configurations (full replication, placement, gossip off, an
// encrypted store, a crash that loses unsynced data mid-run), must leave
// every node of every configuration reading the same value of every key.
// GOSSIPMESH_SEED replays a seed.
func TestMetamorphicConfigurationsAgree(t *testing.T) {
	seed := rand.Uint64()
	if s := os.Getenv("GOSSIPMESH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (replay: GOSSIPMESH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	ops := metaWorkload(rng, 150, 3)
	crashAt := rng.IntN(len(ops))
	configs := []metaConfig{
		{name: "full replication", edit: func(*testing.T, int, *Config) {}},
		{name: "placement R=2", edit: func(_ *testing.T, _ int, c *Config) { shardedConfig(2, 8)(c) }},
		{name: "gossip off", edit: func(_ *testing.T, _ int, c *Config) { c.DisableGossip = true }},
		{name: "sealed store", edit: func(t *testing.T, _ int, c *Config) {
			*c = diskConfig(t.TempDir(), keyFile(t))
		}},
		{name: "crash mid-run", crash: true, edit: func(*testing.T, int, *Config) {}},
	}
	var want string
	for _, mc := range configs {
		got := runMetamorphic(t, mc, ops, crashAt)
		if want == "" {
			want = got
			t.Logf("final view: %s", want)
			continue
		}
		if got != want {
			t.Fatalf("%s ends in\n  %s\nfull replication in\n  %s", mc.name, got, want)
		}
	}
}

// sameSet reports whether every node has the same state of the set at
// key, dots included: equal members with different dots still make a
// remove mean different things.
func sameSet(ctx context.Context, nodes []*Node, key string) func() error {
	return func() error {
		var first []byte
		for i, n := range nodes {
			n.TriggerSync()
			st, err := n.read(ctx, []byte(key), crdt.KindSet)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			var enc []byte
			if st != nil {
				enc = crdt.Encode(st)
			}
			if i == 0 {
				first = enc
			} else if !bytes.Equal(enc, first) {
				return fmt.Errorf("node %d holds another state of %s than node 0", i, key)
			}
		}
		return nil
	}
}

func runMetamorphic(t *testing.T, mc metaConfig, ops []metaOp, crashAt int) string {
	t.Helper()
	ctx := context.Background()
	fs := vfs.NewCrashableMem()
	identity, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	start := func(i int) *Node {
		cfg := testConfig()
		mc.edit(t, i, &cfg)
		if mc.crash && i == 0 {
			disk := openCrashablePebble(t, fs)
			t.Cleanup(func() { disk.Close() })
			cfg.Memory, cfg.Datastore, cfg.Identity = false, disk, identity
		}
		return startNode(t, cfg)
	}
	nodes := []*Node{start(0), start(1), start(2)}
	link(t, nodes[0], nodes[1])
	link(t, nodes[1], nodes[2])
	for i, op := range ops {
		if mc.crash && i == crashAt {
			// Everything acknowledged so far is synced; the clone keeps
			// only that. The abandoned node is closed on the old disk.
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
			nodes[0].Close()
			fs = crashed
			nodes[0] = start(0)
			link(t, nodes[0], nodes[1])
		}
		if op.kind == "srem" {
			// A remove acts on what its node has seen; only once every
			// node has seen the same does it mean the same everywhere.
			waitFor(t, 30*time.Second, mc.name+": the set agreed before a remove", sameSet(ctx, nodes, op.key))
		}
		waitFor(t, 30*time.Second, fmt.Sprintf("%s: op %d (%s %s)", mc.name, i, op.kind, op.key), func() error {
			err := op.run(ctx, nodes[op.at])
			if err != nil && !errors.Is(err, ErrUnavailable) {
				t.Fatalf("%s: op %d: %v", mc.name, i, err)
			}
			return err
		})
	}
	var view string
	waitFor(t, 60*time.Second, mc.name+": every node reads the same", func() error {
		for _, n := range nodes {
			n.TriggerSync()
		}
		first, err := metaView(ctx, nodes[0], ops)
		if err != nil {
			return err
		}
		for i, n := range nodes[1:] {
			v, err := metaView(ctx, n, ops)
			if err != nil {
				return err
			}
			if v != first {
				return fmt.Errorf("node %d reads %s, node 0 %s", i+1, v, first)
			}
		}
		view = first
		return nil
	})
	for _, n := range nodes {
		n.Close()
	}
	return view
}
