package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	gosync "sync"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// keyHeldBy returns a key of the given prefix whose partition n holds (or,
// with held false, does not hold).
func keyHeldBy(n *Node, prefix string, held bool) []byte {
	for i := 0; ; i++ {
		k := fmt.Appendf(nil, "%s%d", prefix, i)
		if n.holds(partitionOf(k, n.cfg.Partitions)) == held {
			return k
		}
	}
}

// restartable returns configs that start the same node again: the same
// identity on the same store.
func restartable(t testing.TB, edit func(*Config)) func() Config {
	store := dssync.MutexWrap(ds.NewMapDatastore())
	identity, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	return func() Config {
		c := testConfig()
		edit(&c)
		c.Datastore, c.Identity = store, identity
		return c
	}
}

// Issue 20, mechanism B: at a node that does not hold a key, operations in
// flight together must each build on the ones before, even while earlier
// hints are handed off to the holder and dropped here. Every acknowledged
// increment and add must be counted at the holder.
func TestConcurrentOpsThroughNonHolderLoseNothing(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	ctx := context.Background()
	nodes := startNodes(t, 2, shardedConfig(1, 8))
	meshLinks(t, nodes, 0, rng)
	waitFor(t, 30*time.Second, "placement", placementSettled(t, nodes, 1))
	writer := nodes[1]
	counter := keyHeldBy(writer, "c", false)
	set := keyHeldBy(writer, "s", false)
	waitFor(t, 30*time.Second, "a first increment", func() error {
		_, err := writer.Incr(ctx, counter, 1)
		if err != nil && !errors.Is(err, ErrUnavailable) {
			t.Fatal(err)
		}
		return err
	})

	const workers, perWorker = 8, 40
	var mu gosync.Mutex
	acked, added := 1, [][]byte{}
	var wg gosync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				if _, err := writer.Incr(ctx, counter, 1); err == nil {
					mu.Lock()
					acked++
					mu.Unlock()
				} else if !errors.Is(err, ErrUnavailable) {
					t.Errorf("incr: %v", err)
				}
				m := fmt.Appendf(nil, "m%d-%d", w, i)
				if err := writer.SAdd(ctx, set, m); err == nil {
					mu.Lock()
					added = append(added, m)
					mu.Unlock()
				} else if !errors.Is(err, ErrUnavailable) {
					t.Errorf("sadd: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if acked == 0 || len(added) == 0 {
		t.Fatal("no operation was acknowledged")
	}
	holder := nodes[0]
	waitFor(t, 30*time.Second, "every acknowledged operation at the holder", func() error {
		v, err := holder.Counter(ctx, counter)
		if err != nil || v < int64(acked) {
			return fmt.Errorf("counter %d (%v), %d increments acknowledged", v, err, acked)
		}
		members, err := holder.SMembers(ctx, set)
		if err != nil {
			return err
		}
		missing := 0
		for _, m := range added {
			if !slices.ContainsFunc(members, func(x []byte) bool { return string(x) == string(m) }) {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d acknowledged adds missing", missing, len(added))
		}
		return nil
	})
}

// Issue 20, mechanism A: a node that gains a partition because its holder
// is gone must not serve increments from an empty view of it. The node's
// own earlier increments (made as hints and handed to the old holder) must
// still count when the old holder returns.
func TestGainedPartitionKeepsOwnEarlierIncrements(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	ctx := context.Background()
	edit := shardedConfig(1, 8)
	holderConfig := restartable(t, edit)
	holder := startNode(t, holderConfig())
	other := startNodes(t, 1, edit)[0]
	link(t, holder, other)
	all := []*Node{holder, other}
	waitFor(t, 30*time.Second, "placement", placementSettled(t, all, 1))
	key := keyHeldBy(other, "c", false)
	if !holder.holds(partitionOf(key, 8)) {
		t.Fatal("key not held by the holder")
	}
	for range 5 {
		waitFor(t, 30*time.Second, "an increment", func() error {
			_, err := other.Incr(ctx, key, 1)
			if err != nil && !errors.Is(err, ErrUnavailable) {
				t.Fatal(err)
			}
			return err
		})
	}
	waitFor(t, 30*time.Second, "the hint handed off and dropped", func() error {
		if v, err := holder.Counter(ctx, key); err != nil || v != 5 {
			return fmt.Errorf("holder reads %d (%v)", v, err)
		}
		if b, _ := loadRaw(ctx, other.store, hintKey(key)); b != nil {
			return errors.New("hint still stored")
		}
		return nil
	})
	holder.Close()
	waitFor(t, 30*time.Second, "the survivor holds the partition", func() error {
		if !other.holds(partitionOf(key, 8)) {
			return errors.New("not yet")
		}
		return nil
	})
	acked := 5
	waitFor(t, 30*time.Second, "an increment at the new holder", func() error {
		_, err := other.Incr(ctx, key, 1)
		if err != nil && !errors.Is(err, ErrUnavailable) {
			t.Fatal(err)
		}
		return err
	})
	acked++
	back := startNode(t, holderConfig())
	link(t, back, other)
	waitFor(t, 30*time.Second, "every increment counted on both nodes", func() error {
		for _, n := range []*Node{back, other} {
			if !n.holds(partitionOf(key, 8)) {
				continue
			}
			if v, err := n.Counter(ctx, key); err != nil || v != int64(acked) {
				return fmt.Errorf("%s reads %d (%v), %d acknowledged", n.ID().ShortString(), v, err, acked)
			}
		}
		return nil
	})
}

// Issue 20: a remove at a node that has just gained a partition (its holder
// looks dead) must not be acknowledged on a view that lacks the member: it
// is refused until the node can act on the key's history, and once the old
// holder is back the remove acts on what it holds.
func TestRemoveOnFreshlyGainedPartitionWaitsForHistory(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	ctx := context.Background()
	edit := func(c *Config) {
		shardedConfig(1, 8)(c)
		c.DeadAfter = 3 * time.Second // the refusal window the test acts in
	}
	holderConfig := restartable(t, edit)
	holder := startNode(t, holderConfig())
	other := startNodes(t, 1, edit)[0]
	link(t, holder, other)
	waitFor(t, 30*time.Second, "placement", placementSettled(t, []*Node{holder, other}, 1))
	key := keyHeldBy(other, "s", false)
	waitFor(t, 30*time.Second, "an add at the holder", func() error {
		err := holder.SAdd(ctx, key, []byte("x"))
		if err != nil && !errors.Is(err, ErrUnavailable) {
			t.Fatal(err)
		}
		return err
	})
	holder.Close()
	waitFor(t, 30*time.Second, "the survivor holds the partition", func() error {
		if !other.holds(partitionOf(key, 8)) {
			return errors.New("not yet")
		}
		return nil
	})
	if err := other.SRem(ctx, key, []byte("x")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("remove on a view without the key's history: %v, want ErrUnavailable", err)
	}
	back := startNode(t, holderConfig())
	link(t, back, other)
	waitFor(t, 30*time.Second, "the old holder holds its partition again", func() error {
		if other.holds(partitionOf(key, 8)) || !back.holds(partitionOf(key, 8)) {
			return errors.New("not yet")
		}
		return nil
	})
	waitFor(t, 30*time.Second, "a remove through the returned holder", func() error {
		err := other.SRem(ctx, key, []byte("x"))
		if err != nil && !errors.Is(err, ErrUnavailable) {
			t.Fatal(err)
		}
		return err
	})
	waitFor(t, 30*time.Second, "the member removed at the holder", func() error {
		ms, err := back.SMembers(ctx, key)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if len(ms) > 0 {
			return fmt.Errorf("members %q", ms)
		}
		return nil
	})
}
