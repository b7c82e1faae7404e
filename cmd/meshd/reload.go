package main

import (
	"errors"
	"log/slog"

	"github.com/gossipmesh/gossipmesh/node"
)

// reload applies what SIGHUP re-reads: the peer allowlist. A file that no
// longer parses is logged and the list in force is kept, so a typo during
// an edit never opens the mesh or locks every peer out.
func reload(s *settings, n *node.Node, logger *slog.Logger) {
	err := n.ReloadAllowlist()
	switch {
	case errors.Is(err, node.ErrNoAllowlistFile):
		logger.Info("SIGHUP: nothing to reload (no --allowlist)")
	case err != nil:
		logger.Error("SIGHUP: allowlist not reloaded; the list in force is kept", "file", s.Allowlist, "err", err)
	default:
		logger.Info("SIGHUP: allowlist reloaded", "file", s.Allowlist)
	}
}
