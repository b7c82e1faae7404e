package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"
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

func (a *app) id(ctx context.Context, _ []string) error {
	v, err := a.c.ID(ctx)
	if err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(v)
	}
	return a.lines(append([]string{v.PeerID}, v.Addrs...))
}

func (a *app) peers(ctx context.Context, _ []string) error {
	v, err := a.c.Peers(ctx)
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

func (a *app) members(ctx context.Context, _ []string) error {
	ms, err := a.c.Members(ctx)
	if err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(map[string]any{"members": ms})
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tSTATE\tPARTITIONS\tADDRS")
	for _, m := range ms {
		state := m.State
		if m.Self {
			state += " (self)"
		}
		addrs := strings.Join(slices.Sorted(slices.Values(m.Addrs)), ",")
		if addrs == "" {
			addrs = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.PeerID, state, ranges(m.Partitions), addrs)
	}
	return tw.Flush()
}

// ranges writes sorted partitions compactly: "0-3,7,9-10", "-" for none.
func ranges(ps []uint32) string {
	if len(ps) == 0 {
		return "-"
	}
	var parts []string
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		s := strconv.FormatUint(uint64(ps[i]), 10)
		if j > i {
			s += "-" + strconv.FormatUint(uint64(ps[j]), 10)
		}
		parts = append(parts, s)
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func (a *app) join(ctx context.Context, args []string) error {
	id, err := a.c.Join(ctx, args[0])
	if err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(map[string]string{"peer_id": id})
	}
	_, err = fmt.Fprintf(a.stdout, "joined %s\n", id)
	return err
}

func (a *app) leave(ctx context.Context, _ []string) error {
	if err := a.c.Leave(ctx); err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(map[string]bool{"left": true})
	}
	_, err := fmt.Fprintln(a.stdout, "meshd announced its leave and is shutting down")
	return err
}

func (a *app) status(ctx context.Context, _ []string) error {
	st, err := a.c.Status(ctx)
	if err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(st)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "peer\t%s\nmesh\t%s\nkeys\t%d\npeers\t%d\n\n", st.PeerID, st.Mesh, st.Keys, st.Peers)
	printStore(tw, st)
	fmt.Fprintln(tw, "PARTITION\tKEYS\tPEERS AGREEING\tROOT")
	for _, p := range st.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\n", p.Partition, p.Keys, p.PeersAgreeing, p.Root)
	}
	return tw.Flush()
}

// printStore prints what status says of the store: its size and quota,
// free disk space, and whether (and why) it is full.
func printStore(w io.Writer, st apitypes.StatusResponse) {
	if st.StoreBytes > 0 {
		fmt.Fprintf(w, "store bytes\t%d\n", st.StoreBytes)
	}
	if st.MaxStoreBytes > 0 {
		fmt.Fprintf(w, "max store bytes\t%d\n", st.MaxStoreBytes)
	}
	if st.FreeBytes > 0 {
		fmt.Fprintf(w, "free bytes\t%d\n", st.FreeBytes)
	}
	full := "no"
	switch {
	case st.StoreFullReason != "":
		full = "yes (" + strings.ReplaceAll(st.StoreFullReason, "_", " ") + ")"
	case st.StoreFull:
		full = "yes"
	}
	if st.AnnouncedFull {
		full += ", announced to placement"
	}
	fmt.Fprintf(w, "store full\t%s\n\n", full)
}
