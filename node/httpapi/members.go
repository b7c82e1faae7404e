package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"
	"github.com/multiformats/go-multiaddr"
)

// members lists every member the node knows, itself first.
func (s *server) members(w http.ResponseWriter, r *http.Request) {
	ms, err := s.b.Members(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := apitypes.MeshMembersResponse{Members: make([]apitypes.MeshMember, 0, len(ms))}
	for _, m := range ms {
		parts := m.Partitions
		if parts == nil {
			parts = []uint32{}
		}
		resp.Members = append(resp.Members, apitypes.MeshMember{
			PeerID: m.ID.String(), State: string(m.State), Self: m.Self,
			Addrs: addrStrings(m.Addrs), Partitions: parts,
		})
	}
	writeJSON(w, http.StatusOK, resp)
}

// joinTimeout bounds the dial of POST /v1/join.
const joinTimeout = 15 * time.Second

// join dials a peer, given as a multiaddr with /p2p/<peer ID>, and keeps
// reconnecting to it.
func (s *server) join(w http.ResponseWriter, r *http.Request) {
	var req apitypes.JoinRequest
	if err := decodeJSON(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	addr, err := multiaddr.NewMultiaddr(strings.TrimSpace(req.Addr))
	if err != nil || req.Addr == "" {
		s.fail(w, r, badRequest(`addr must be a multiaddr ending in /p2p/PEERID, got %q`, req.Addr))
		return
	}
	id, err := addr.ValueForProtocol(multiaddr.P_P2P)
	if err != nil {
		s.fail(w, r, badRequest("addr %s has no /p2p/PEERID part", addr))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), joinTimeout)
	defer cancel()
	if err := s.b.Connect(ctx, addr); err != nil {
		s.fail(w, r, joinError(err))
		return
	}
	writeJSON(w, http.StatusOK, apitypes.JoinResponse{PeerID: id})
}

// errJoin: the peer could not be reached; the node keeps trying.
var errJoin = errors.New("httpapi: cannot reach the peer (meshd keeps retrying it)")

func joinError(err error) error {
	if status, _ := classify(err); status != http.StatusInternalServerError {
		return err
	}
	return fmt.Errorf("%w: %v", errJoin, err)
}

// leave hands over to Options.Leave, which announces the leave and stops
// the daemon.
func (s *server) leave(w http.ResponseWriter, r *http.Request) {
	if s.opts.Leave == nil {
		s.fail(w, r, errUnsupported)
		return
	}
	if err := s.opts.Leave(r.Context()); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apitypes.LeaveResponse{Left: true})
}
