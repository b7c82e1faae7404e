package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"
)

// tokenCmd prints the node's join token (GET /v1/token): another node
// joins its private mesh with meshd --join-token TOKEN.
func (a *app) tokenCmd() *cobra.Command {
	return a.cmd("token", "Print the join token another node joins this node's mesh with (meshd --join-token)", exactArgs(0), a.token)
}

func (a *app) token(ctx context.Context, _ []string) error {
	token, err := a.c.Token(ctx)
	if err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(apitypes.TokenResponse{Token: token})
	}
	_, err = fmt.Fprintln(a.stdout, token)
	return err
}
