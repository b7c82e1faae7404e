package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// healthCmd checks that the node's API answers (GET /v1/health), for a
// liveness probe: exit 0 and "ok", or a clear error and exit 1.
func (a *app) healthCmd() *cobra.Command {
	return a.cmd("health", "Check that the node answers (liveness; wait --ready checks readiness)", exactArgs(0), a.health)
}

func (a *app) health(ctx context.Context, _ []string) error {
	if err := a.c.Health(ctx); err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(map[string]string{"status": "ok"})
	}
	_, err := fmt.Fprintln(a.stdout, "ok")
	return err
}
