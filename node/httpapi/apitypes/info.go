package apitypes

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
	PeerID    string `json:"peer_id"`
	Mesh      string `json:"mesh"`
	Keys      int    `json:"keys"`
	Peers     int    `json:"peers"`
	Hints     int    `json:"hints"`                // writes for partitions not held, not yet handed off
	StoreFull bool   `json:"store_full"`           // free space below the floor, or the store at its quota: writes get 507
	FreeBytes uint64 `json:"free_bytes,omitempty"` // the store's free disk space; absent when not measured
	// StoreFullReason is why the store is full: "disk_floor" or "quota"
	// (absent when not full).
	StoreFullReason string `json:"store_full_reason,omitempty"`
	// StoreBytes is the store's size as last measured (absent when the
	// store does not report it); MaxStoreBytes its quota (absent: none).
	StoreBytes    uint64 `json:"store_bytes,omitempty"`
	MaxStoreBytes uint64 `json:"max_store_bytes,omitempty"`
	// AnnouncedFull: under placement, the node tells the mesh it is full
	// and is given no partition it does not store yet.
	AnnouncedFull bool                `json:"announced_full,omitempty"`
	Partitions    []PartitionResponse `json:"partitions"`
	Version       string              `json:"version"` // the gossipmesh build serving the API
}

// HealthResponse is the body of GET /v1/health: the process answers.
type HealthResponse struct {
	Status string `json:"status"` // "ok"
}

// ReadyResponse is the body of GET /v1/ready, with status 200 when Ready
// and 503 when not (then Error and Code are set as in ErrorResponse).
type ReadyResponse struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"` // why not ready
	Peers  int    `json:"peers"`
	Error  string `json:"error,omitempty"`
	Code   string `json:"code,omitempty"`
}

// Member states in MeshMember.State.
const (
	StateAlive   = "alive"
	StateSuspect = "suspect"
	StateDead    = "dead"
	StateLeft    = "left"
)

// MeshMember is one entry of GET /v1/members.
type MeshMember struct {
	PeerID string   `json:"peer_id"`
	State  string   `json:"state"` // alive, suspect, dead or left
	Self   bool     `json:"self,omitempty"`
	Addrs  []string `json:"addrs"`
	// Partitions the member holds under this node's view of placement.
	Partitions []uint32 `json:"partitions"`
}

// MeshMembersResponse is the body of GET /v1/members.
type MeshMembersResponse struct {
	Members []MeshMember `json:"members"`
}

// JoinRequest is the body of POST /v1/join.
type JoinRequest struct {
	Addr string `json:"addr"` // a multiaddr ending in /p2p/<peer ID>
}

// JoinResponse is the body of a successful POST /v1/join.
type JoinResponse struct {
	PeerID string `json:"peer_id"`
}

// LeaveResponse is the body of a successful POST /v1/leave: the node
// announced its leave to its peers and is shutting down.
type LeaveResponse struct {
	Left bool `json:"left"`
}

// TokenResponse is the body of GET /v1/token.
type TokenResponse struct {
	// Token is the join token another node starts with to join this
	// node's private mesh (meshd --join-token): it carries the mesh
	// secret, so the route needs the API token when one is set.
	Token string `json:"token"`
}
