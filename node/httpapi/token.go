package httpapi

import (
	"net/http"

	"github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"
)

func (s *server) joinToken(w http.ResponseWriter, r *http.Request) {
	if s.opts.JoinToken == nil {
		writeError(w, http.StatusNotFound, apitypes.CodeNotFound, "this node has no join token: it is in an open mesh (meshd --open)")
		return
	}
	writeJSON(w, http.StatusOK, TokenResponse{Token: s.opts.JoinToken()})
}
