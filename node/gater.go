package node

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// ErrNoAllowlistFile: ReloadAllowlist was called on a node configured
// without an AllowlistFile.
var ErrNoAllowlistFile = errors.New("node: no allowlist file configured")

// gater is the libp2p connection gater. It refuses peers that are not on the
// allowlist (when one is set) and peers blocked for sending invalid input.
// Peers are checked when dialled and once the secure handshake has proved
// their identity; an inbound connection's peer ID is unknown before that.
type gater struct {
	mu      gosync.RWMutex
	allow   map[peer.ID]bool // nil: everyone may connect
	blocked map[peer.ID]time.Time
	refused atomic.Uint64
	now     func() time.Time // Config.Now
}

var _ connmgr.ConnectionGater = (*gater)(nil)

func newGater(allow []peer.ID, now func() time.Time) *gater {
	g := &gater{blocked: make(map[peer.ID]time.Time), now: now}
	g.setAllowlist(allow)
	return g
}

// setAllowlist replaces the allowlist; nil admits everyone.
func (g *gater) setAllowlist(ids []peer.ID) {
	var m map[peer.ID]bool
	if ids != nil {
		m = make(map[peer.ID]bool, len(ids))
		for _, id := range ids {
			m[id] = true
		}
	}
	g.mu.Lock()
	g.allow = m
	g.mu.Unlock()
}

func (g *gater) allowlist() map[peer.ID]bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.allow
}

// block refuses id until the given time.
func (g *gater) block(id peer.ID, until time.Time) {
	g.mu.Lock()
	g.blocked[id] = until
	g.mu.Unlock()
}

func (g *gater) blockedCount() int {
	now := g.now()
	g.mu.RLock()
	defer g.mu.RUnlock()
	count := 0
	for _, until := range g.blocked {
		if now.Before(until) {
			count++
		}
	}
	return count
}

// allowed reports whether id may be connected now.
func (g *gater) allowed(id peer.ID) bool {
	g.mu.RLock()
	until, isBlocked := g.blocked[id]
	ok := g.allow == nil || g.allow[id]
	g.mu.RUnlock()
	if isBlocked {
		if g.now().Before(until) {
			ok = false
		} else {
			g.mu.Lock()
			if g.blocked[id] == until {
				delete(g.blocked, id)
			}
			g.mu.Unlock()
		}
	}
	if !ok {
		g.refused.Add(1)
	}
	return ok
}

func (g *gater) InterceptPeerDial(id peer.ID) bool                               { return g.allowed(id) }
func (g *gater) InterceptAddrDial(peer.ID, multiaddr.Multiaddr) bool             { return true }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool                     { return true }
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

func (g *gater) InterceptSecured(_ network.Direction, id peer.ID, _ network.ConnMultiaddrs) bool {
	return g.allowed(id)
}

// configuredAllowlist merges Config.AllowPeers and Config.AllowlistFile;
// nil when neither is set.
func configuredAllowlist(cfg *Config) ([]peer.ID, error) {
	if cfg.AllowPeers == nil && cfg.AllowlistFile == "" {
		return nil, nil
	}
	ids := append([]peer.ID{}, cfg.AllowPeers...)
	if cfg.AllowlistFile != "" {
		more, err := readAllowlist(cfg.AllowlistFile)
		if err != nil {
			return nil, err
		}
		ids = append(ids, more...)
	}
	return ids, nil
}

// readAllowlist reads peer IDs, one a line; blank lines and text after '#'
// are ignored. An empty file is a valid list that admits nobody.
func readAllowlist(path string) ([]peer.ID, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: allowlist: %v", ErrInvalidConfig, err)
	}
	return parseAllowlist(path, raw)
}

func parseAllowlist(name string, raw []byte) ([]peer.ID, error) {
	ids := []peer.ID{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		id, err := peer.Decode(text)
		if err != nil {
			return nil, fmt.Errorf("%w: allowlist %s line %d: %q is not a peer ID", ErrInvalidConfig, name, line, text)
		}
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: allowlist %s: %v", ErrInvalidConfig, name, err)
	}
	return ids, nil
}

// SetAllowlist replaces the peer allowlist at run time and disconnects
// connected peers that are no longer on it. nil admits every peer again.
func (n *Node) SetAllowlist(ids []peer.ID) {
	n.sec.gate.setAllowlist(ids)
	n.dropDisallowed()
	n.log.Info("peer allowlist set", "peers", len(ids), "enabled", ids != nil)
}

// ReloadAllowlist re-reads Config.AllowlistFile (together with
// Config.AllowPeers) and applies it; meshd calls it on SIGHUP. On error the
// list in force is kept.
func (n *Node) ReloadAllowlist() error {
	if n.cfg.AllowlistFile == "" {
		return ErrNoAllowlistFile
	}
	ids, err := configuredAllowlist(&n.cfg)
	if err != nil {
		return err
	}
	n.SetAllowlist(ids)
	return nil
}

// dropDisallowed closes connections to peers the gater now refuses.
func (n *Node) dropDisallowed() {
	for _, id := range n.host.Network().Peers() {
		if !n.sec.gate.allowed(id) {
			_ = n.host.Network().ClosePeer(id)
		}
	}
}
