package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gossipmesh/gossipmesh/internal/version"
)

// versionCmd prints meshctl's build and, when the node answers, the
// build of the meshd serving the API.
func (a *app) versionCmd() *cobra.Command {
	return a.cmd("version", "Print meshctl's version, and the node's when it answers", exactArgs(0), a.version)
}

type versionOutput struct {
	Meshctl version.Info `json:"meshctl"`
	Server  string       `json:"server,omitempty"` // the node's version; empty when it did not answer
}

func (a *app) version(ctx context.Context, _ []string) error {
	out := versionOutput{Meshctl: version.Get()}
	if st, err := a.c.Status(ctx); err == nil {
		out.Server = st.Version
	}
	if a.jsonOut {
		return a.printJSON(out)
	}
	if _, err := fmt.Fprintf(a.stdout, "meshctl %s\n", out.Meshctl); err != nil {
		return err
	}
	if out.Server != "" {
		_, err := fmt.Fprintf(a.stdout, "meshd %s at %s\n", out.Server, a.c.Addr())
		return err
	}
	return nil
}
