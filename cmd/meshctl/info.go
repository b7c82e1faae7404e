package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gossipmesh/gossipmesh/node/httpapi"
	"golang.org/x/term"
)

// netDialer is a net.Dialer with the --connect-timeout.
type netDialer struct{ timeout time.Duration }

func (d *netDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return (&net.Dialer{Timeout: d.timeout, KeepAlive: 30 * time.Second}).DialContext(ctx, network, addr)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (a *app) watch(ctx context.Context, args []string) error {
	prefix := ""
	if len(args) == 1 {
		prefix = args[0]
	}
	return a.c.watch(ctx, prefix, func(data []byte) error {
		if a.jsonOut {
			_, err := fmt.Fprintf(a.stdout, "%s\n", data)
			return err
		}
		var ev httpapi.EventResponse
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("bad event from meshd: %v", err)
		}
		_, err := fmt.Fprintln(a.stdout, eventLine(ev))
		return err
	})
}

// eventLine is the plain form of a change, tab-separated for cut and awk:
// "put KEY VALUE", "del KEY", or "KIND KEY" for counters, sets and
// multi-value registers, whose new value is one read away.
func eventLine(ev httpapi.EventResponse) string {
	origin := "local"
	if ev.Remote {
		origin = "remote"
	}
	switch {
	case ev.Kind == "register" && ev.Deleted:
		return strings.Join([]string{"del", ev.Key, origin}, "\t")
	case ev.Kind == "register":
		v := ""
		if ev.Value != nil {
			v = *ev.Value
		} else if ev.ValueB64 != nil {
			v = "base64:" + *ev.ValueB64
		}
		return strings.Join([]string{"put", ev.Key, origin, v}, "\t")
	}
	return strings.Join([]string{ev.Kind, ev.Key, origin}, "\t")
}

func (a *app) id(ctx context.Context, _ []string) error {
	v, err := a.c.id(ctx)
	if err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(v)
	}
	return a.lines(append([]string{v.PeerID}, v.Addrs...))
}

func (a *app) peers(ctx context.Context, _ []string) error {
	v, err := a.c.peers(ctx)
	if err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(v)
	}
	out := make([]string, len(v.Peers))
	for i, p := range v.Peers {
		out[i] = strings.TrimSpace(p.PeerID + " " + strings.Join(p.Addrs, ","))
	}
	return a.lines(out)
}

func (a *app) status(ctx context.Context, _ []string) error {
	st, err := a.c.status(ctx)
	if err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(st)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "peer\t%s\nmesh\t%s\nkeys\t%d\npeers\t%d\n\n", st.PeerID, st.Mesh, st.Keys, st.Peers)
	fmt.Fprintln(tw, "PARTITION\tKEYS\tPEERS AGREEING\tROOT")
	for _, p := range st.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\n", p.Partition, p.Keys, p.PeersAgreeing, p.Root)
	}
	return tw.Flush()
}
