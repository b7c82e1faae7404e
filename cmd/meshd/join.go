package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/gossipmesh/gossipmesh/node/httpapi"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// Join timing. A join target is asked for its identity until it answers,
// backing off from joinMinBackoff to joinMaxBackoff; once it is a member the
// loop only checks, every joinCheckEvery, that it still is, and asks again
// when it is not. The node's own redial backoff grows to a minute, which is
// long after a network partition heals; the join loop's cap is much lower,
// so a daemon told to join a peer by name finds it again within seconds.
const (
	joinMinBackoff = 250 * time.Millisecond
	joinMaxBackoff = 4 * time.Second
	joinCheckEvery = 2 * time.Second
	joinTimeout    = 3 * time.Second
)

// joinTarget is one --join: the HTTP API URL of a peer, or (dns set) a
// host:port whose name stands for every address it resolves to.
type joinTarget struct {
	base string // http://node1:7700
	dns  string // tasks.meshd:7700
}

// parseJoin checks --join values: http or https URLs with a host, or
// dns://NAME:PORT.
func parseJoin(ss []string) ([]joinTarget, error) {
	out := make([]joinTarget, 0, len(ss))
	for _, s := range ss {
		u, err := url.Parse(s)
		switch {
		case err == nil && u.Scheme == "dns" && validDNSJoin(u):
			out = append(out, joinTarget{dns: u.Host})
		case err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "":
			out = append(out, joinTarget{base: strings.TrimSuffix(u.String(), "/")})
		default:
			return nil, usagef("--join %q: want the HTTP API URL of a peer, like http://node1:7700, or dns://NAME:PORT", s)
		}
	}
	return out, nil
}

// validDNSJoin accepts dns://NAME:PORT and nothing more.
func validDNSJoin(u *url.URL) bool {
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || u.User != nil || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return false
	}
	p, err := strconv.Atoi(port)
	return err == nil && p > 0 && p < 1<<16
}

// joiner is the node side of --join: what the loop needs of the node.
type joiner interface {
	ID() peer.ID
	Connect(ctx context.Context, addr multiaddr.Multiaddr) error
	Peers() []node.PeerInfo
}

var _ joiner = (*node.Node)(nil)

// joinLoop keeps n joined to the peer whose HTTP API is at base: it fetches
// base/v1/id and dials the addresses returned, with retry and backoff, until
// ctx ends. token, when set, is sent as the bearer token.
func joinLoop(ctx context.Context, n joiner, base, token string, log *slog.Logger) {
	client := &http.Client{Timeout: joinTimeout}
	backoff := joinMinBackoff
	var target peer.ID
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if target != "" && isMember(n, target) {
			backoff = joinMinBackoff
			timer.Reset(joinCheckEvery)
			continue
		}
		id, err := joinOnce(ctx, client, n, base, token)
		if err == nil && id == n.ID() {
			// This node itself (a compose file or a DNS name lists every
			// node): nothing to keep joined.
			log.Debug("join: this node itself", "via", base)
			return
		}
		if err == nil {
			if target != id {
				log.Info("joined", "via", base, "peer", id)
			}
			target = id
			failures = 0
			backoff = joinMinBackoff
			timer.Reset(joinCheckEvery)
			continue
		}
		failures++
		// The first failures are expected while peers start; say so once.
		if failures == 8 {
			log.Warn("join: peer not reachable yet, still trying", "via", base, "err", err)
		} else {
			log.Debug("join attempt failed", "via", base, "err", err)
		}
		timer.Reset(backoff)
		backoff = min(2*backoff, joinMaxBackoff)
	}
}

func isMember(n joiner, id peer.ID) bool {
	for _, p := range n.Peers() {
		if p.ID == id {
			return true
		}
	}
	return false
}

// joinOnce asks base for the peer's identity and dials it. Joining oneself
// (a shared compose file lists every node) is a quiet success.
func joinOnce(ctx context.Context, client *http.Client, n joiner, base, token string) (peer.ID, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*joinTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/id", nil)
	if err != nil {
		return "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s/v1/id: %s", base, res.Status)
	}
	var body httpapi.IDResponse
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return "", fmt.Errorf("GET %s/v1/id: %v", base, err)
	}
	id, err := peer.Decode(body.PeerID)
	if err != nil {
		return "", fmt.Errorf("GET %s/v1/id: peer ID: %v", base, err)
	}
	if id == n.ID() {
		return id, nil
	}
	var addrs []multiaddr.Multiaddr
	for _, s := range body.Addrs {
		if a, err := multiaddr.NewMultiaddr(s); err == nil {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("GET %s/v1/id: no usable address in %v", base, body.Addrs)
	}
	// Dial every address at once and keep the first that answers: a
	// container on several networks lists an address per network, not all
	// of them reachable from here, and a dead one must not hold up the rest.
	// libp2p merges concurrent dials to one peer.
	errs := make(chan error, len(addrs))
	for _, a := range addrs {
		go func() { errs <- n.Connect(ctx, a) }()
	}
	var lastErr error
	for range addrs {
		if lastErr = <-errs; lastErr == nil {
			return id, nil
		}
	}
	return "", lastErr
}
