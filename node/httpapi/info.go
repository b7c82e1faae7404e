package httpapi

import (
	"encoding/hex"
	"net/http"

	"github.com/gossipmesh/gossipmesh/internal/version"
	"github.com/multiformats/go-multiaddr"
)

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
		StoreFull: st.StoreFull, FreeBytes: st.FreeBytes, StoreFullReason: st.StoreFullReason,
		StoreBytes: st.StoreBytes, MaxStoreBytes: st.MaxStoreBytes, AnnouncedFull: st.AnnouncedFull,
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
