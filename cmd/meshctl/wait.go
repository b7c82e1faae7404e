package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gossipmesh/gossipmesh/node/httpapi/client"
	"github.com/spf13/cobra"
)

// waitPoll is how often wait asks meshd again.
const waitPoll = 200 * time.Millisecond

func (a *app) waitCmd() *cobra.Command {
	var ready bool
	var timeout time.Duration
	c := a.cmd("wait --ready", "Wait until meshd is ready (store open, trees built, a peer reached unless alone)", exactArgs(0),
		func(ctx context.Context, _ []string) error {
			if !ready {
				return usageErrorf("usage: meshctl wait --ready [--timeout D]")
			}
			return a.waitReady(ctx, timeout)
		})
	c.Long = `Wait until GET /v1/ready answers ready, asking every 200ms; meshd not
answering yet (still starting) counts as not ready. Exit 0 when ready, 1
with the last reason when --timeout passes. Fit for a container healthcheck
or a script after starting meshd.`
	c.Flags().BoolVar(&ready, "ready", false, "wait for readiness (the one condition there is)")
	c.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	return c
}

func (a *app) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(waitPoll)
	defer tick.Stop()
	last := errors.New("no answer yet")
	for {
		r, err := a.c.Ready(ctx)
		if err == nil && r.Ready {
			if a.jsonOut {
				return a.printJSON(r)
			}
			return nil
		}
		if errors.Is(err, client.ErrUnauthorized) || errors.Is(err, client.ErrNotMeshd) {
			return err // waiting will not change it
		}
		if ctx.Err() == nil && err != nil {
			last = err // not the cut-off of the last try
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("meshd not ready after %v: %s", timeout, a.message(last))
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}
