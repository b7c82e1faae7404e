package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// With R = 1 over four nodes, each node stores about a quarter of the
// keys; MeshKeys on any node lists them all, Keys only its own.
func TestMeshKeysListsAcrossHolders(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	nodes := startNodes(t, 4, shardedConfig(1, 16))
	meshLinks(t, nodes, 0, rng)
	waitFor(t, 30*time.Second, "placement settled", placementSettled(t, nodes, 1))
	ctx := context.Background()
	want := map[string]bool{}
	for i := range 40 {
		k := fmt.Sprintf("k/%02d", i)
		want[k] = true
		if err := nodes[i%4].Put(ctx, []byte(k), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := nodes[0].Put(ctx, []byte("other"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "every key listed by every node", func() error {
		for i, n := range nodes {
			keys, err := n.MeshKeys(ctx, []byte("k/"))
			if err != nil {
				return err
			}
			if len(keys) != len(want) {
				return fmt.Errorf("node %d lists %d keys, want %d", i, len(keys), len(want))
			}
			for j, k := range keys {
				if !want[string(k)] || (j > 0 && string(keys[j-1]) >= string(k)) {
					return fmt.Errorf("node %d lists %q out of order or unexpected", i, k)
				}
			}
		}
		return nil
	})
	local := 0
	for k, err := range nodes[0].Keys(ctx, []byte("k/")) {
		if err != nil {
			t.Fatal(err)
		}
		_ = k
		local++
	}
	if local >= len(want) {
		t.Fatalf("node 0 stores %d of %d keys locally: R = 1 over 4 should spread them", local, len(want))
	}
}
