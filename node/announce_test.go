package node

import (
	"testing"

	"github.com/multiformats/go-multiaddr"
)

func TestAnnounceAddrsReplaceListenAddrs(t *testing.T) {
	cfg := testConfig()
	announced := multiaddr.StringCast("/ip4/203.0.113.7/tcp/7800")
	cfg.AnnounceAddrs = []multiaddr.Multiaddr{announced}
	n := startNode(t, cfg)
	addrs := n.Addrs()
	if len(addrs) != 1 {
		t.Fatalf("Addrs() = %v, want only the announced address", addrs)
	}
	want := announced.Encapsulate(multiaddr.StringCast("/p2p/" + n.ID().String()))
	if !addrs[0].Equal(want) {
		t.Errorf("Addrs() = %v, want %v", addrs, want)
	}
}
