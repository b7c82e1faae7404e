package simulations

import (
	"fmt"
	"math/rand/v2"
	"slices"
	gosync "sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/multiformats/go-multiaddr"
)

// simNet is the simulated network: go-libp2p's mocknet with a fixed,
// seed-drawn topology. A mocknet link is the ability to connect. Nodes dial
// their neighbours in the topology; by default only neighbours are linked,
// so a node reaches the rest of the mesh only through them, as on a real
// sparse overlay. Under placement every pair is linked, as on an IP network,
// since a node must reach a partition's holders directly (they learn each
// other's addresses from membership heartbeats).
//
// mocknet's UnlinkPeers leaves existing connections working, so cutting an
// edge both unlinks and disconnects it. The methods are called by the run's
// controller goroutine only.
type simNet struct {
	mn        mocknet.Mocknet
	neighbors [][]int // the topology: whom each node dials
	reach     [][]int // whom each node can connect to: its neighbours, or everyone
	ids       []peer.ID
	addrs     []multiaddr.Multiaddr
	up        []bool
	cut       map[[2]int]bool // edges cut by the current partition

	// severed mirrors cut for the stream wrappers, which run on the
	// nodes' goroutines: a stream across a cut edge fails at its next
	// write, so a partition takes effect at once, before mocknet has
	// finished closing the connections it cuts.
	mu      gosync.RWMutex
	severed map[[2]peer.ID]bool
	// closing tracks the background closes of cut connections.
	closing gosync.WaitGroup
}

// isSevered reports whether the link between a and b is cut now.
func (s *simNet) isSevered(a, b peer.ID) bool {
	if a > b {
		a, b = b, a
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.severed[[2]peer.ID{a, b}]
}

func (s *simNet) setSevered(i, j int, cut bool) {
	a, b := s.ids[i], s.ids[j]
	if a > b {
		a, b = b, a
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cut {
		s.severed[[2]peer.ID{a, b}] = true
	} else {
		delete(s.severed, [2]peer.ID{a, b})
	}
}

// newSimNet draws the topology: a ring (so the graph is connected) plus
// random chords until every node has about degree neighbours.
func newSimNet(n, degree int, reachAll bool, opts mocknet.LinkOptions, rng *rand.Rand) *simNet {
	s := &simNet{
		mn:        mocknet.New(),
		neighbors: make([][]int, n),
		ids:       make([]peer.ID, n),
		addrs:     make([]multiaddr.Multiaddr, n),
		up:        make([]bool, n),
		cut:       map[[2]int]bool{},
		severed:   map[[2]peer.ID]bool{},
	}
	s.mn.SetLinkDefaults(opts)
	adj := make([]map[int]bool, n)
	for i := range adj {
		adj[i] = map[int]bool{}
	}
	add := func(a, b int) {
		if a != b {
			adj[a][b], adj[b][a] = true, true
		}
	}
	if n > 1 {
		for i := range n {
			add(i, (i+1)%n)
		}
	}
	degree = min(degree, n-1)
	for i := range n {
		for tries := 0; len(adj[i]) < degree && tries < 4*n; tries++ {
			add(i, rng.IntN(n))
		}
	}
	s.reach = make([][]int, n)
	for i := range n {
		for j := range n {
			if adj[i][j] {
				s.neighbors[i] = append(s.neighbors[i], j)
			}
			if i != j && (reachAll || adj[i][j]) {
				s.reach[i] = append(s.reach[i], j)
			}
		}
	}
	return s
}

func edge(a, b int) [2]int {
	if a > b {
		a, b = b, a
	}
	return [2]int{a, b}
}

// linked reports whether a and b can talk now: both up, in reach, not cut.
func (s *simNet) linked(a, b int) bool {
	return s.up[a] && s.up[b] && !s.cut[edge(a, b)]
}

// addHost brings node i's host up with its fixed key and address and links
// it to the nodes in its reach. The node closes the host.
func (s *simNet) addHost(i int, key crypto.PrivKey) (host.Host, error) {
	if s.addrs[i] == nil {
		// 100::/64 is the IPv6 discard prefix: the address is only a name
		// inside mocknet and can never be routed anywhere.
		s.addrs[i] = multiaddr.StringCast(fmt.Sprintf("/ip6/100::%x/tcp/4242", i+1))
	}
	h, err := s.mn.AddPeer(key, s.addrs[i])
	if err != nil {
		return nil, fmt.Errorf("simulations: mocknet peer %d: %w", i, err)
	}
	s.ids[i] = h.ID()
	s.up[i] = true
	for _, j := range s.reach[i] {
		if s.linked(i, j) {
			if _, err := s.mn.LinkPeers(s.ids[i], s.ids[j]); err != nil {
				return nil, fmt.Errorf("simulations: link %d-%d: %w", i, j, err)
			}
		}
	}
	return h, nil
}

// removeHost unlinks a node that is going down, so nobody can dial it.
func (s *simNet) removeHost(i int) {
	for _, j := range s.reach[i] {
		if s.linked(i, j) {
			_ = s.mn.UnlinkPeers(s.ids[i], s.ids[j])
		}
	}
	s.up[i] = false
}

// partition cuts every edge between different groups. All links go first,
// so no new connection can cross the cut, and every stream across it fails
// at its next write; the existing connections are then closed in the
// background, since closing a busy mocknet connection waits for its
// streams to drain (seconds, in a large mesh), and the fault schedule and
// the workload must not wait for that.
func (s *simNet) partition(groups [][]int) {
	side := map[int]int{}
	for g, members := range groups {
		for _, i := range members {
			side[i] = g
		}
	}
	var cut [][2]int
	for i, ns := range s.reach {
		for _, j := range ns {
			if i < j && side[i] != side[j] {
				if s.linked(i, j) {
					_ = s.mn.UnlinkPeers(s.ids[i], s.ids[j])
					cut = append(cut, edge(i, j))
				}
				s.cut[edge(i, j)] = true
				if s.ids[i] != "" && s.ids[j] != "" {
					s.setSevered(i, j, true)
				}
			}
		}
	}
	ids := slices.Clone(s.ids)
	s.closing.Add(1)
	go func() {
		defer s.closing.Done()
		parallel(len(cut), func(k int) {
			a, b := ids[cut[k][0]], ids[cut[k][1]]
			_ = s.mn.DisconnectPeers(a, b)
			_ = s.mn.DisconnectPeers(b, a)
		})
	}()
}

// maxParallel bounds the goroutines of one parallel call.
const maxParallel = 32

// parallel runs f(0..n-1) on up to maxParallel goroutines and waits.
func parallel(n int, f func(i int)) {
	var wg gosync.WaitGroup
	sem := make(chan struct{}, maxParallel)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// heal relinks every cut edge and returns the edges whose ends are up, for
// the caller to reconnect.
func (s *simNet) heal() [][2]int {
	var out [][2]int
	// Connections cut by the partition must be gone before the links
	// come back, or a late close would cut a healed link.
	s.closing.Wait()
	for e := range s.cut {
		delete(s.cut, e)
		if s.ids[e[0]] != "" && s.ids[e[1]] != "" {
			s.setSevered(e[0], e[1], false)
		}
		if s.linked(e[0], e[1]) {
			if _, err := s.mn.LinkPeers(s.ids[e[0]], s.ids[e[1]]); err == nil {
				out = append(out, e)
			}
		}
	}
	return out
}

// p2pAddr is node i's address with /p2p/<peer ID>, for node.Connect.
func (s *simNet) p2pAddr(i int) multiaddr.Multiaddr {
	return s.addrs[i].Encapsulate(multiaddr.StringCast("/p2p/" + s.ids[i].String()))
}

func (s *simNet) close() error {
	s.closing.Wait()
	return s.mn.Close()
}
