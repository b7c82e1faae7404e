package httpapi

import (
	"fmt"
	"net/http"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"
)

// health is liveness: the process serves HTTP. It asks nothing of the
// node, so a busy node is not restarted by an orchestrator.
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, apitypes.HealthResponse{Status: "ok"})
}

// ready is readiness: the backend's Ready (store open, trees built, a
// member reached unless alone by config), and with Options.ExpectPeers at
// least one member in any case. 503 with a reason when not.
func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	err := s.b.Ready(r.Context())
	peers := len(s.b.Peers())
	if err == nil && s.opts.ExpectPeers && peers == 0 {
		err = fmt.Errorf("%w: no mesh member reached yet", node.ErrNotReady)
	}
	if err != nil {
		status, code := classify(err)
		if status < 500 {
			status = http.StatusServiceUnavailable
		}
		msg := userMessage(err)
		writeJSON(w, status, apitypes.ReadyResponse{Ready: false, Reason: msg, Peers: peers, Error: msg, Code: code})
		return
	}
	writeJSON(w, http.StatusOK, apitypes.ReadyResponse{Ready: true, Peers: peers})
}
