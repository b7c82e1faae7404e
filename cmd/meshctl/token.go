package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// tokenCmd prints the node's join token (GET /v1/token): another node
// joins its private mesh with meshd --join-token TOKEN.
func (a *app) tokenCmd() *cobra.Command {
	return a.cmd("token", "Print the join token another node joins this node's mesh with (meshd --join-token)", exactArgs(0), a.token)
}

func (a *app) token(ctx context.Context, _ []string) error {
	var v struct {
		Token string `json:"token"`
	}
	if err := a.c.getJSON(ctx, "/v1/token", &v); err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(v)
	}
	_, err := fmt.Fprintln(a.stdout, v.Token)
	return err
}
