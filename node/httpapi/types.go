package httpapi

import "github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"

// The request and response bodies live in package apitypes, which clients
// import without linking the node; these names keep them reachable here.
type (
	KVResponse          = apitypes.KVResponse
	ValuesResponse      = apitypes.ValuesResponse
	KeysResponse        = apitypes.KeysResponse
	CounterRequest      = apitypes.CounterRequest
	CounterResponse     = apitypes.CounterResponse
	MemberRequest       = apitypes.MemberRequest
	MembersResponse     = apitypes.MembersResponse
	RestoreResponse     = apitypes.RestoreResponse
	IDResponse          = apitypes.IDResponse
	TokenResponse       = apitypes.TokenResponse
	PeerResponse        = apitypes.PeerResponse
	PeersResponse       = apitypes.PeersResponse
	PartitionResponse   = apitypes.PartitionResponse
	StatusResponse      = apitypes.StatusResponse
	EventResponse       = apitypes.EventResponse
	ErrorResponse       = apitypes.ErrorResponse
	HealthResponse      = apitypes.HealthResponse
	ReadyResponse       = apitypes.ReadyResponse
	MeshMember          = apitypes.MeshMember
	MeshMembersResponse = apitypes.MeshMembersResponse
)
