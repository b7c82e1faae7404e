package httpapi

import "net/http"

// TokenResponse is the body of GET /v1/token.
type TokenResponse struct {
	// Token is the join token another node starts with to join this
	// node's private mesh (meshd --join-token): it carries the mesh
	// secret, so the route needs the API token when one is set.
	Token string `json:"token"`
}

func (s *server) joinToken(w http.ResponseWriter, r *http.Request) {
	if s.opts.JoinToken == nil {
		writeError(w, http.StatusNotFound, "this node has no join token: it is in an open mesh (meshd --open)")
		return
	}
	writeJSON(w, http.StatusOK, TokenResponse{Token: s.opts.JoinToken()})
}
