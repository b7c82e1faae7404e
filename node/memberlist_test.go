package node

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func stateOf(t testing.TB, n *Node, id string) (MemberState, []uint32) {
	t.Helper()
	ms, err := n.Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.ID.String() == id {
			return m.State, m.Partitions
		}
	}
	return "", nil
}

// A node that leaves is dropped from its peers' placement at once and
// listed as left, well before SuspectAfter would even suspect it.
func TestLeaveIsAnnouncedAndListed(t *testing.T) {
	nodes := startNodes(t, 3, func(c *Config) {
		c.Partitions, c.Replication = 8, 1
		c.SuspectAfter, c.DeadAfter = time.Hour, 2*time.Hour
	})
	a, b, c := nodes[0], nodes[1], nodes[2]
	link(t, a, b)
	link(t, a, c)
	link(t, b, c)
	waitFor(t, 10*time.Second, "three members", func() error {
		for _, n := range nodes {
			if p := n.Peers(); len(p) != 2 {
				return fmt.Errorf("%s has %d peers", n.ID(), len(p))
			}
		}
		return nil
	})
	ms, err := a.Members(context.Background())
	if err != nil || len(ms) != 3 || !ms[0].Self || ms[0].State != MemberAlive {
		t.Fatalf("members = %+v, %v", ms, err)
	}
	held := 0
	for _, m := range ms {
		held += len(m.Partitions)
	}
	if held != 8 {
		t.Fatalf("R=1 over 8 partitions: %d held in all, want 8: %+v", held, ms)
	}
	if err := a.Ready(context.Background()); err != nil {
		t.Fatalf("ready: %v", err)
	}

	cid := c.ID().String()
	if err := c.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{a, b} {
		if st, parts := stateOf(t, n, cid); st != MemberLeft || len(parts) != 0 {
			t.Fatalf("%s sees the leaver as %q holding %v, want left holding nothing", n.ID(), st, parts)
		}
		if p := n.Peers(); len(p) != 1 {
			t.Fatalf("%s still counts %d peers", n.ID(), len(p))
		}
	}
	if err := c.Ready(context.Background()); err == nil {
		t.Fatal("a node that left says it is ready")
	}
}

func TestReadyAloneAndWithBootstrap(t *testing.T) {
	alone := startNode(t, testConfig())
	if err := alone.Ready(context.Background()); err != nil {
		t.Fatalf("a node with no peers configured is not ready: %v", err)
	}
	cfg := testConfig()
	dead := startNode(t, testConfig())
	cfg.Bootstrap = dead.Addrs()
	dead.Close()
	waiting := startNode(t, cfg)
	if err := waiting.Ready(context.Background()); err == nil || !errors.Is(err, ErrNotReady) {
		t.Fatalf("a node whose bootstrap peer is down: %v, want ErrNotReady", err)
	}
}

// Counter and set events carry the value after the change.
func TestWatchEventsCarryCounterAndSetValues(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, testConfig())
	events, err := n.Watch(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Incr(ctx, []byte("c"), 5); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Incr(ctx, []byte("c"), -2); err != nil {
		t.Fatal(err)
	}
	if err := n.SAdd(ctx, []byte("s"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := n.SAdd(ctx, []byte("s"), []byte("a")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 4 {
		select {
		case ev := <-events:
			got = append(got, fmt.Sprintf("%s %d %q", ev.Kind, ev.Counter, ev.Members))
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d events: %v", len(got), got)
		}
	}
	want := []string{`counter 5 []`, `counter 3 []`, `set 0 ["b"]`, `set 0 ["a" "b"]`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// A member that stops without a leave is suspected, then listed as dead.
func TestSilentMemberIsListedDead(t *testing.T) {
	nodes := startNodes(t, 2, shardedConfig(0, 4))
	a, b := nodes[0], nodes[1]
	link(t, a, b)
	bid := b.ID().String()
	waitFor(t, 10*time.Second, "b alive on a", func() error {
		if st, _ := stateOf(t, a, bid); st != MemberAlive {
			return fmt.Errorf("b is %q", st)
		}
		return nil
	})
	b.Close()
	waitFor(t, 20*time.Second, "b dead on a", func() error {
		if st, _ := stateOf(t, a, bid); st != MemberDead {
			return fmt.Errorf("b is %q", st)
		}
		return nil
	})
}
