package httpapi

import (
	"encoding/hex"
	"net/http"

	"github.com/gossipmesh/gossipmesh/internal/version"
	"github.com/multiformats/go-multiaddr"
)

// IDResponse is the body of GET /v1/id.
type IDResponse struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"` // each ends in /p2p/<peer ID>
}

// PeerResponse is one entry of GET /v1/peers.
type PeerResponse struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
}

// PeersResponse is the body of GET /v1/peers.
type PeersResponse struct {
	Peers []PeerResponse `json:"peers"`
}

// PartitionResponse is one held partition in GET /v1/status.
type PartitionResponse struct {
	Partition     uint32 `json:"partition"`
	Root          string `json:"root"` // Merkle root, hex
	Keys          int    `json:"keys"`
	PeersAgreeing int    `json:"peers_agreeing"`
	// Under placement (replication R > 0): whether this node holds the
	// partition (else it is handing it over), its holders, and whether
	// they all last reported this node's root.
	Held         bool     `json:"held"`
	Holders      []string `json:"holders,omitempty"`
	HoldersAgree bool     `json:"holders_agree"`
}

// StatusResponse is the body of GET /v1/status.
type StatusResponse struct {
	PeerID     string              `json:"peer_id"`
	Mesh       string              `json:"mesh"`
	Keys       int                 `json:"keys"`
	Peers      int                 `json:"peers"`
	Hints      int                 `json:"hints"` // writes for partitions not held, not yet handed off
	Partitions []PartitionResponse `json:"partitions"`
	Version    string              `json:"version"` // the gossipmesh build serving the API
}

func addrStrings(as []multiaddr.Multiaddr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func (s *server) id(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, IDResponse{PeerID: s.b.ID().String(), Addrs: addrStrings(s.b.Addrs())})
}

func (s *server) peers(w http.ResponseWriter, r *http.Request) {
	resp := PeersResponse{Peers: []PeerResponse{}}
	for _, p := range s.b.Peers() {
		resp.Peers = append(resp.Peers, PeerResponse{PeerID: p.ID.String(), Addrs: addrStrings(p.Addrs)})
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.b.Status(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := StatusResponse{
		PeerID: st.PeerID.String(), Mesh: st.Mesh, Keys: st.Keys, Peers: st.Peers, Hints: st.Hints,
		Partitions: make([]PartitionResponse, 0, len(st.Partitions)),
		Version:    version.Get().Version,
	}
	for _, p := range st.Partitions {
		holders := make([]string, len(p.Holders))
		for i, h := range p.Holders {
			holders[i] = h.String()
		}
		resp.Partitions = append(resp.Partitions, PartitionResponse{
			Partition: p.Partition, Root: hex.EncodeToString(p.Root[:]), Keys: p.Keys, PeersAgreeing: p.PeersAgreeing,
			Held: p.Held, Holders: holders, HoldersAgree: p.HoldersAgree,
		})
	}
	writeJSON(w, http.StatusOK, resp)
}
