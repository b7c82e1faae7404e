package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/multiformats/go-multiaddr"
)

const identityFile = "identity.key"

// loadIdentity returns the configured key, or the one kept in the data
// directory, creating it (mode 0600) on first start.
func loadIdentity(cfg *Config) (crypto.PrivKey, error) {
	if cfg.Identity != nil {
		return cfg.Identity, nil
	}
	if cfg.Memory {
		key, _, err := crypto.GenerateEd25519Key(nil)
		return key, err
	}
	path := filepath.Join(cfg.DataDir, identityFile)
	raw, err := os.ReadFile(path)
	if err == nil {
		key, err := crypto.UnmarshalPrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: identity %s: %v", ErrInvalidConfig, path, err)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: identity: %v", ErrStore, err)
	}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, err
	}
	raw, err = crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStore, err)
	}
	// Write then rename, so a crash never leaves half a key behind.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return nil, fmt.Errorf("%w: identity: %v", ErrStore, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("%w: identity: %v", ErrStore, err)
	}
	return key, nil
}

func (n *Node) startHost(ctx context.Context, key crypto.PrivKey) error {
	var err error
	if n.sec, err = newSecurity(&n.cfg); err != nil {
		return err
	}
	listen := n.cfg.ListenAddrs
	if len(n.cfg.SwarmKey) > 0 || n.cfg.SwarmKeyFile != "" {
		var dropped []multiaddr.Multiaddr
		if listen, dropped = privateListenAddrs(listen); len(dropped) > 0 {
			n.log.Info("private mesh: listening on TCP only, QUIC cannot carry a swarm key", "dropped", dropped)
			if len(listen) == 0 {
				return fmt.Errorf("%w: with a swarm key ListenAddrs needs a TCP address, got only %v", ErrInvalidConfig, dropped)
			}
		}
	}
	secOpts, err := n.hostOptions()
	if err != nil {
		return err
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrs(listen...),
		// Noise and TLS are go-libp2p's defaults; they are named here so a
		// change of defaults can never leave the mesh unencrypted.
		libp2p.DefaultSecurity,
	}
	// Per-protocol byte totals for Stats and the daemon's /metrics.
	n.bandwidth = metrics.NewBandwidthCounter()
	opts = append(opts, libp2p.BandwidthReporter(n.bandwidth))
	if n.cfg.NATPortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	if n.cfg.HolePunching {
		opts = append(opts, libp2p.EnableHolePunching())
	}
	if !n.cfg.RelayClient {
		opts = append(opts, libp2p.DisableRelay())
	}
	if announce := n.cfg.AnnounceAddrs; len(announce) > 0 {
		opts = append(opts, libp2p.AddrsFactory(func([]multiaddr.Multiaddr) []multiaddr.Multiaddr {
			return announce
		}))
	}
	opts = append(opts, secOpts...)
	h := n.cfg.Host
	if h == nil {
		if err := checkListenFree(listen); err != nil {
			return err
		}
		if h, err = libp2p.New(opts...); err != nil {
			return fmt.Errorf("node: libp2p host: %w", err)
		}
	}
	n.host = h
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			// A host given in Config (mocknet) has no gater of ours, so
			// the gate is also checked here.
			if !n.sec.gate.allowed(c.RemotePeer()) {
				go c.Close()
				return
			}
			// The dialer starts the session; if both ends did, a fresh
			// node would receive everything twice.
			if c.Stat().Direction == network.DirOutbound {
				n.onConnected(c.RemotePeer())
			}
		},
	})
	return nil
}

// startDiscovery connects to bootstrap peers, keeps reconnecting to them with
// backoff, and starts mDNS when enabled.
func (n *Node) startDiscovery(ctx context.Context) error {
	var boot []peer.AddrInfo
	for _, a := range n.cfg.Bootstrap {
		info, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return fmt.Errorf("%w: bootstrap %s: %v", ErrInvalidConfig, a, err)
		}
		boot = append(boot, *info)
	}
	for _, info := range boot {
		n.members.remember(info)
	}
	n.wg.Add(1)
	go n.reconnectLoop()
	if n.cfg.MDNS {
		svc := mdns.NewMdnsService(n.host, "gossipmesh-"+n.cfg.Mesh, mdnsNotifee{n})
		if err := svc.Start(); err != nil {
			n.log.Warn("mDNS discovery unavailable", "err", err)
		} else {
			go func() { <-n.closing; svc.Close() }()
		}
	}
	return nil
}

type mdnsNotifee struct{ n *Node }

func (m mdnsNotifee) HandlePeerFound(info peer.AddrInfo) {
	if info.ID == m.n.host.ID() {
		return
	}
	m.n.members.remember(info)
	m.n.connect(info)
}

// Connect dials a peer given as a multiaddr with /p2p/<peer ID> and keeps
// reconnecting to it when the connection drops.
func (n *Node) Connect(ctx context.Context, addr multiaddr.Multiaddr) error {
	info, err := peer.AddrInfoFromP2pAddr(addr)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	n.members.remember(*info)
	return n.host.Connect(ctx, *info)
}

func (n *Node) connect(info peer.AddrInfo) {
	ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	defer cancel()
	err := n.host.Connect(ctx, info)
	switch {
	case err == nil || n.ctx.Err() != nil:
	case n.members.firstFailure(info.ID):
		// Once per outage: a dead port, a wrong swarm key or an
		// unresolvable name would otherwise leave peers empty in silence.
		n.log.Warn("cannot reach known peer; retrying with backoff", "peer", info.ID, "addrs", info.Addrs, "err", err)
	default:
		n.log.Debug("connect failed", "peer", info.ID, "err", err)
	}
}

// reconnectLoop redials known peers that dropped, backing off exponentially
// per peer from 1 s to maxRedialBackoff (15 s).
func (n *Node) reconnectLoop() {
	defer n.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		n.connect0()
		select {
		case <-n.closing:
			return
		case <-tick.C:
		}
	}
}

func (n *Node) connect0() {
	now := n.cfg.Now()
	for _, info := range n.members.due(now, n.host.Network()) {
		n.wg.Add(1) // safe: the calling loop holds the group open
		go func() {
			defer n.wg.Done()
			n.connect(info)
		}()
	}
}

func sha8(s string) [8]byte {
	sum := sha256.Sum256([]byte(s))
	var out [8]byte
	copy(out[:], sum[:8])
	return out
}
