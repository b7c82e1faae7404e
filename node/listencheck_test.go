package node

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/multiformats/go-multiaddr"
)

// portOf is the port of n's first address using proto (multiaddr.P_TCP or
// multiaddr.P_UDP).
func portOf(t *testing.T, n *Node, proto int) string {
	t.Helper()
	for _, a := range n.Addrs() {
		if p, err := a.ValueForProtocol(proto); err == nil {
			return p
		}
	}
	t.Fatalf("no address with protocol %d in %v", proto, n.Addrs())
	return ""
}

// A second node on a TCP port a first node holds must be refused: libp2p
// binds with SO_REUSEPORT, so without the check both would listen.
func TestListenAddressHeldByAnotherNodeIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, listen string
		proto        int
		format       string
	}{
		{"tcp", "/ip4/127.0.0.1/tcp/0", multiaddr.P_TCP, "/ip4/127.0.0.1/tcp/%s"},
		{"quic", "/ip4/127.0.0.1/udp/0/quic-v1", multiaddr.P_UDP, "/ip4/127.0.0.1/udp/%s/quic-v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.ListenAddrs = []multiaddr.Multiaddr{multiaddr.StringCast(tc.listen)}
			first := startNode(t, cfg)
			taken := multiaddr.StringCast(fmt.Sprintf(tc.format, portOf(t, first, tc.proto)))

			cfg = testConfig()
			cfg.ListenAddrs = []multiaddr.Multiaddr{taken}
			second, err := New(context.Background(), cfg)
			if err == nil {
				second.Close()
				t.Fatalf("a second node listened on %s, which the first holds", taken)
			}
			if !errors.Is(err, ErrAddrInUse) {
				t.Fatalf("New on a held port: %v, want ErrAddrInUse", err)
			}
		})
	}
}

// A fixed port that is free is taken as usual: the probe lets it go.
func TestListenOnFreeFixedPort(t *testing.T) {
	cfg := testConfig()
	first := startNode(t, cfg)
	port := portOf(t, first, multiaddr.P_TCP)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	cfg = testConfig()
	cfg.ListenAddrs = []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/" + port)}
	n := startNode(t, cfg)
	if got := portOf(t, n, multiaddr.P_TCP); got != port {
		t.Fatalf("listening on port %s, want %s", got, port)
	}
}
