package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gossipmesh/gossipmesh/node/httpapi/client"
	"github.com/spf13/cobra"
)

func (a *app) watchCmd() *cobra.Command {
	var once bool
	var from string
	c := a.cmd("watch [PREFIX]", "Print changes to keys under PREFIX as they happen; reconnects and resumes", rangeArgs(0, 1),
		func(ctx context.Context, args []string) error { return a.watch(ctx, args, from, once) })
	c.Long = `Print changes to keys under PREFIX as they happen, one per line,
tab-separated: "put KEY ORIGIN VALUE", "del KEY ORIGIN", "counter KEY ORIGIN
VALUE", "set KEY ORIGIN MEMBER...", "mv-register KEY ORIGIN" (ORIGIN is local
or remote; keys, values and members in --encoding). --json prints each
event as meshd sends it.

When the connection breaks or meshd restarts, watch reconnects (backing off
up to 10 s) and resumes after the last event it printed. If meshd no longer
has the changes since then, a note goes to stderr (with --json a
{"reset":true} line to stdout): re-read what you need. --once exits instead.
--from ID starts after the event with that id (the "id" of --json's lines),
to carry on where an earlier meshctl watch stopped.`
	c.Flags().BoolVar(&once, "once", false, "exit when the stream ends instead of reconnecting")
	c.Flags().StringVar(&from, "from", "", "start after the event with this id (from --json output)")
	return c
}

func (a *app) watch(ctx context.Context, args []string, from string, once bool) error {
	var prefix []byte
	if len(args) == 1 {
		p, err := a.enc.decode("PREFIX", args[0])
		if err != nil {
			return err
		}
		prefix = p
	}
	opts := client.WatchOptions{Prefix: prefix, From: from}
	if once {
		err := a.c.Watch(ctx, opts, a.printEvent)
		if errors.Is(err, client.ErrWatchEnded) {
			return errors.New("meshd ended the watch")
		}
		return err
	}
	return a.c.Follow(ctx, opts, client.FollowOptions{OnRetry: a.retrying}, a.printEvent)
}

func (a *app) retrying(err error, wait time.Duration) {
	fmt.Fprintf(a.stderr, "meshctl: watch: %s; reconnecting in %v\n", a.message(err), wait)
}

func (a *app) printEvent(ev client.Event) error {
	if ev.Reset {
		if a.jsonOut {
			return a.printJSON(map[string]any{"reset": true, "reason": ev.ResetReason})
		}
		fmt.Fprintf(a.stderr, "meshctl: watch: changes may have been missed (%s); re-read what you need\n", ev.ResetReason)
		return nil
	}
	if a.jsonOut {
		return a.printJSON(a.eventJSON(ev))
	}
	_, err := fmt.Fprintln(a.stdout, a.eventLine(ev))
	return err
}

// eventLine is the plain form of a change, tab-separated for cut and awk.
func (a *app) eventLine(ev client.Event) string {
	origin := "local"
	if ev.Remote {
		origin = "remote"
	}
	f := []string{ev.Kind, a.enc.encode(ev.Key), origin}
	switch {
	case ev.Kind == "register" && ev.Deleted:
		f[0] = "del"
	case ev.Kind == "register":
		f[0] = "put"
		f = append(f, a.enc.encode(ev.Value))
	case ev.Counter != nil:
		f = append(f, fmt.Sprint(*ev.Counter))
	case ev.Kind == "set":
		for _, m := range ev.Members {
			f = append(f, a.enc.encode(m))
		}
	}
	return strings.Join(f, "\t")
}

func (a *app) eventJSON(ev client.Event) map[string]any {
	out := map[string]any{"id": ev.ID, "key": a.enc.encode(ev.Key), "kind": ev.Kind, "remote": ev.Remote}
	if ev.Deleted {
		out["deleted"] = true
	}
	if ev.Value != nil {
		out["value"] = a.enc.encode(ev.Value)
	}
	if ev.Counter != nil {
		out["counter"] = *ev.Counter
	}
	if ev.Kind == "set" {
		ms := make([]string, len(ev.Members))
		for i, m := range ev.Members {
			ms[i] = a.enc.encode(m)
		}
		out["members"] = ms
	}
	return out
}
