package node

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/multiformats/go-multiaddr"
)

// ErrSwarmKey: the swarm key is missing, unreadable or not in the
// "/key/swarm/psk/1.0.0/" format.
var ErrSwarmKey = errors.New("node: bad swarm key")

// security holds the defences that sit beside the libp2p host: the
// connection gater (allowlist and temporary blocks), the count of invalid
// input per peer, and the cap on inbound sync sessions per peer. It is
// built before the host, because the gater must be handed to libp2p.New.
type security struct {
	gate      *gater
	offenders offenders
	syncs     syncCaps
	scores    scoreBoard

	peersBlocked  atomic.Uint64 // peers blocked for invalid input
	syncRefused   atomic.Uint64 // inbound sync streams reset by the per-peer cap or the newcomers' cap
	framesRefused atomic.Uint64 // frames refused: their memory could not be reserved
	stalled       atomic.Uint64 // streams cut: the peer stopped reading
}

func newSecurity(cfg *Config) (*security, error) {
	allow, err := configuredAllowlist(cfg)
	if err != nil {
		return nil, err
	}
	s := &security{gate: newGater(allow, cfg.Now)}
	s.offenders.init()
	s.syncs.init(cfg.MaxSyncSessionsPerPeer)
	return s, nil
}

// hostOptions are the libp2p options that carry the security settings: the
// swarm key, the gater and the resource manager.
func (n *Node) hostOptions() ([]libp2p.Option, error) {
	opts := []libp2p.Option{libp2p.ConnectionGater(n.sec.gate)}
	if n.cfg.Host == nil {
		// Only a host we build uses it; made for a given host, its
		// background goroutine would outlive the node.
		rm, err := newResourceManager()
		if err != nil {
			return nil, fmt.Errorf("node: resource manager: %w", err)
		}
		cm, err := connManagerOption()
		if err != nil {
			return nil, err
		}
		opts = append(opts, libp2p.ResourceManager(rm), cm)
	}
	psk, err := loadSwarmKey(&n.cfg)
	if err != nil {
		return nil, err
	}
	if psk != nil {
		opts = append(opts, libp2p.PrivateNetwork(psk))
	}
	return opts, nil
}

// loadSwarmKey returns the configured pre-shared key, or nil for a public
// mesh.
func loadSwarmKey(cfg *Config) (pnet.PSK, error) {
	raw := cfg.SwarmKey
	if cfg.SwarmKeyFile != "" {
		var err error
		if raw, err = os.ReadFile(cfg.SwarmKeyFile); err != nil {
			return nil, fmt.Errorf("%w: %w: %v", ErrInvalidConfig, ErrSwarmKey, err)
		}
	}
	if len(raw) == 0 {
		if cfg.SwarmKeyFile != "" {
			return nil, fmt.Errorf("%w: %w: %s is empty", ErrInvalidConfig, ErrSwarmKey, cfg.SwarmKeyFile)
		}
		return nil, nil
	}
	psk, err := pnet.DecodeV1PSK(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %v", ErrInvalidConfig, ErrSwarmKey, err)
	}
	return psk, nil
}

// privateListenAddrs drops the listen addresses a private network cannot
// use. libp2p's QUIC (and WebTransport, WebRTC) transports refuse a
// pre-shared key, so with a swarm key the node listens on TCP only.
func privateListenAddrs(addrs []multiaddr.Multiaddr) (kept, dropped []multiaddr.Multiaddr) {
	for _, a := range addrs {
		if _, err := a.ValueForProtocol(multiaddr.P_UDP); err == nil {
			dropped = append(dropped, a)
			continue
		}
		kept = append(kept, a)
	}
	return kept, dropped
}

// GenerateSwarmKey returns a new random swarm key in the standard
// "/key/swarm/psk/1.0.0/" file format, as written to swarm.key files.
func GenerateSwarmKey() []byte {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return []byte("/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(k[:]) + "\n")
}

// SecurityStats counts what the node's defences refused.
type SecurityStats struct {
	PeersBlocked    uint64 // peers disconnected and blocked for invalid input
	SyncRefused     uint64 // inbound sync streams reset by the per-peer cap or the newcomers' cap
	FramesRefused   uint64 // sync and kv frames refused unread: the resource manager had no memory for them
	Stalled         uint64 // sync streams cut because the peer stopped reading (Config.SyncStallTimeout)
	ConnsRefused    uint64 // connections refused by the gater (allowlist or block)
	BlockedNow      int    // peers blocked at this moment
	AllowlistActive bool
}

// SecurityStats returns the node's security counters.
func (n *Node) SecurityStats() SecurityStats {
	s := n.sec
	return SecurityStats{
		PeersBlocked:    s.peersBlocked.Load(),
		SyncRefused:     s.syncRefused.Load(),
		FramesRefused:   s.framesRefused.Load(),
		Stalled:         s.stalled.Load(),
		ConnsRefused:    s.gate.refused.Load(),
		BlockedNow:      s.gate.blockedCount(),
		AllowlistActive: s.gate.allowlist() != nil,
	}
}
