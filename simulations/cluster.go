package simulations

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"math/rand/v2"
	gosync "sync"
	"time"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// simNode is one simulated member: its identity, kept store, meter and
// clock skew survive crashes; the *node.Node does not.
type simNode struct {
	idx   int
	key   crypto.PrivKey
	store *probeStore
	meter *meter
	skew  time.Duration

	mu   gosync.Mutex
	n    *node.Node // nil while down
	busy gosync.WaitGroup
}

// current returns the running node, or nil if it is down.
func (s *simNode) current() *node.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// cluster owns the simulated nodes and the network. Lifecycle methods are
// called by the run's controller goroutine only.
type cluster struct {
	cfg   Config
	net   *simNet
	nodes []*simNode
	loss  *lossModel
	log   *slog.Logger
	dials gosync.WaitGroup // background dials, waited for by closeAll
	// replication is the nodes' replication factor R (0: full replication).
	replication int
	grace       time.Duration // the nodes' TombstoneGrace; 0: the default
	open        openStreams
}

func newCluster(cfg Config, plan Plan, rng *rand.Rand) *cluster {
	c := &cluster{cfg: cfg, log: cfg.NodeLogger, replication: plan.Replication, grace: plan.TombstoneGrace}
	c.net = newSimNet(cfg.Nodes, cfg.Degree, plan.Replication > 0, linkOptions(plan), rng)
	if plan.Loss > 0 {
		c.loss = &lossModel{p: plan.Loss, rng: rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))}
	}
	for i := range cfg.Nodes {
		// Identities come from the seed, so peer IDs, HLC node IDs and
		// hence last-writer-wins tie breaks are the same on every run.
		var seed [ed25519.SeedSize]byte
		for j := 0; j < len(seed); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				seed[j+k] = byte(v >> (8 * k))
			}
		}
		key, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed[:]))
		if err != nil {
			panic(fmt.Sprintf("simulations: ed25519 key from seed: %v", err)) // cannot happen: the length is fixed
		}
		c.nodes = append(c.nodes, &simNode{idx: i, key: key, store: newProbeStore(), meter: &meter{}, skew: plan.Skew[i]})
	}
	return c
}

// nodeConfig is the node configuration every simulated node runs with.
func (c *cluster) nodeConfig(s *simNode) node.Config {
	cfg := node.DefaultConfig()
	cfg.Datastore = s.store
	cfg.Memory = true
	cfg.MDNS = false
	cfg.Partitions = c.cfg.Partitions
	cfg.SyncInterval = c.cfg.SyncInterval
	cfg.SyncJitter = 0.5
	cfg.SyncTimeout = 5 * time.Second
	cfg.Logger = c.log
	if c.grace > 0 {
		cfg.TombstoneGrace = c.grace
	}
	if c.replication > 0 {
		// Failure detection scaled to the anti-entropy interval, so
		// placement follows membership within a few rounds.
		cfg.Replication = c.replication
		cfg.HeartbeatInterval = c.cfg.SyncInterval
		cfg.SuspectAfter = 3 * c.cfg.SyncInterval
		cfg.DeadAfter = 8 * c.cfg.SyncInterval
	}
	if skew := s.skew; skew != 0 {
		cfg.Now = func() time.Time { return time.Now().Add(skew) }
	}
	return cfg
}

// start brings node i up (first start, restart or join) and dials its
// reachable neighbours; it does not wait for the dials.
func (c *cluster) start(ctx context.Context, i int) error {
	s := c.nodes[i]
	h, err := c.net.addHost(i, s.key)
	if err != nil {
		return err
	}
	cfg := c.nodeConfig(s)
	cfg.Host = &meteredHost{Host: h, m: s.meter, loss: c.loss, net: c.net, open: &c.open}
	n, err := node.New(ctx, cfg)
	if err != nil {
		_ = h.Close()
		c.net.removeHost(i)
		return fmt.Errorf("simulations: start node %d: %w", i, err)
	}
	s.mu.Lock()
	s.n = n
	s.mu.Unlock()
	return nil
}

// dialNeighbors makes node i connect to each reachable neighbour and waits
// for the dials (libp2p's Connect returns after identify). Both ends then
// remember each other and redial after a drop.
func (c *cluster) dialNeighbors(ctx context.Context, i int, only func(j int) bool) {
	n := c.nodes[i].current()
	if n == nil {
		return
	}
	var targets []int
	for _, j := range c.net.neighbors[i] {
		if c.net.linked(i, j) && (only == nil || only(j)) {
			targets = append(targets, j)
		}
	}
	parallel(len(targets), func(k int) { c.connect(ctx, i, targets[k]) })
}

// dialAsync dials in the background, so a heal or restart does not hold
// up the fault schedule while libp2p identifies the new connections.
func (c *cluster) dialAsync(ctx context.Context, pairs [][2]int) {
	c.dials.Add(1)
	go func() {
		defer c.dials.Done()
		parallel(len(pairs), func(k int) { c.connect(ctx, pairs[k][0], pairs[k][1]) })
	}()
}

func (c *cluster) connect(ctx context.Context, i, j int) {
	n := c.nodes[i].current()
	if n == nil || c.nodes[j].current() == nil {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := n.Connect(dctx, c.net.p2pAddr(j)); err != nil {
		c.log.Debug("simulated dial failed", "from", i, "to", j, "err", err)
	}
}

// crash stops node i without warning its peers. Operations already sent to
// it finish first, so each of them is either acknowledged or not: the model
// never has to guess about a write cut off by the crash. The store keeps
// only what was synced: whatever the node wrote since its last fsync is
// lost, as in a power cut, and its shutdown writes nothing durable.
func (c *cluster) crash(i int) error {
	s := c.nodes[i]
	s.mu.Lock()
	n := s.n
	s.n = nil
	s.mu.Unlock()
	s.busy.Wait()
	if n == nil {
		return nil
	}
	s.store.crash()
	c.net.removeHost(i)
	n.Close() // fails to write on the crashed store, as it should
	return s.store.recover()
}

func (c *cluster) closeAll() {
	c.dials.Wait()
	for i, s := range c.nodes {
		if s.current() != nil {
			if err := c.crash(i); err != nil {
				c.log.Debug("close", "node", i, "err", err)
			}
		}
	}
	_ = c.net.close()
	c.open.resetAll()
}

// upNodes returns the running nodes, by index.
func (c *cluster) upNodes() []*simNode {
	var out []*simNode
	for _, s := range c.nodes {
		if s.current() != nil {
			out = append(out, s)
		}
	}
	return out
}
