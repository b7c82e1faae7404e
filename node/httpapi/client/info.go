package client

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"
)

// ID returns the node's peer ID and multiaddrs.
func (c *Client) ID(ctx context.Context) (apitypes.IDResponse, error) {
	var v apitypes.IDResponse
	return v, c.getJSON(ctx, "/v1/id", &v)
}

// Token returns the join token of the node's private mesh (meshd
// --join-token); a node in an open mesh has none (ErrNotFound).
func (c *Client) Token(ctx context.Context) (string, error) {
	var v apitypes.TokenResponse
	return v.Token, c.getJSON(ctx, "/v1/token", &v)
}

// Peers lists the node's live mesh members.
func (c *Client) Peers(ctx context.Context) (apitypes.PeersResponse, error) {
	var v apitypes.PeersResponse
	return v, c.getJSON(ctx, "/v1/peers", &v)
}

// Status returns per-partition roots, key counts and agreement.
func (c *Client) Status(ctx context.Context) (apitypes.StatusResponse, error) {
	var v apitypes.StatusResponse
	return v, c.getJSON(ctx, "/v1/status", &v)
}

// Members lists every member the node knows, itself first, with its state
// (alive, suspect, dead, left), addresses and the partitions it holds.
func (c *Client) Members(ctx context.Context) ([]apitypes.MeshMember, error) {
	var v apitypes.MeshMembersResponse
	return v.Members, c.getJSON(ctx, "/v1/members", &v)
}

// Join asks the node to dial the peer at addr (a multiaddr ending in
// /p2p/PEERID) and keep it; it returns the peer ID.
func (c *Client) Join(ctx context.Context, addr string) (string, error) {
	var v apitypes.JoinResponse
	return v.PeerID, c.sendJSON(ctx, "POST", "/v1/join", apitypes.JoinRequest{Addr: addr}, &v)
}

// Leave asks the node to announce its leave to the mesh and stop.
func (c *Client) Leave(ctx context.Context) error {
	return c.sendJSON(ctx, "POST", "/v1/leave", nil, nil)
}

// Health checks liveness: nil when meshd answers.
func (c *Client) Health(ctx context.Context) error {
	var v apitypes.HealthResponse
	return c.getJSON(ctx, "/v1/health", &v)
}

// Ready checks readiness. A node that is not ready answers with the
// reason, and Ready returns an error matching ErrNotReady with it.
func (c *Client) Ready(ctx context.Context) (apitypes.ReadyResponse, error) {
	res, err := c.do(ctx, "GET", "/v1/ready", nil, nil)
	var v apitypes.ReadyResponse
	if err != nil {
		return v, err
	}
	defer res.Body.Close()
	return v, decodeBody(res, &v)
}

// Backup streams a backup file of the node into w and returns its size.
// Verify it (package backup) before trusting it.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	res, err := c.do(ctx, "POST", "/v1/backup", nil, nil)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	n, err := io.Copy(w, res.Body)
	if err != nil {
		return n, fmt.Errorf("client: backup stream broke after %d bytes: %w", n, err)
	}
	return n, nil
}

// Restore uploads a backup file of the given size and returns the number
// of records meshd merged; meshd verifies it whole first.
func (c *Client) Restore(ctx context.Context, body io.Reader, size int64) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/v1/restore", body)
	if err != nil {
		return 0, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := c.send(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var rr apitypes.RestoreResponse
	return rr.Records, decodeBody(res, &rr)
}
