package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gossipmesh/gossipmesh/node/httpapi/client"
	"github.com/spf13/cobra"
)

// usageError marks bad command lines, which exit 2 rather than 1.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// app holds the global flags and streams every command uses.
type app struct {
	api       string
	jsonOut   bool
	encoding  string
	tokenFile string
	timeout   time.Duration

	stdin          io.Reader
	stdout, stderr io.Writer
	httpClient     *http.Client // nil: one with --connect-timeout; set by tests
	c              *client.Client
	enc            codec
}

// run executes one meshctl command line and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	return a.run(ctx, args)
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	started := false
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		started = true
		return a.connect()
	}
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ue *usageError
	// cobra's own complaints (unknown command or flag, wrong arg count)
	// happen before any command starts: they are usage errors too.
	usage := errors.As(err, &ue) || !started
	if !started && wantsJSON(args) {
		a.jsonOut = true // cobra stopped before parsing flags
	}
	a.printError(err, usage)
	if usage {
		return 2
	}
	return 1
}

// wantsJSON reports whether a command line cobra refused asks for --json.
func wantsJSON(args []string) bool {
	for _, arg := range args {
		switch arg {
		case "--":
			return false
		case "--json", "--json=true":
			return true
		}
	}
	return false
}

// printError writes err as one line on stderr: plain text, or JSON
// {"error","code"} under --json.
func (a *app) printError(err error, usage bool) {
	msg := strings.TrimPrefix(a.message(err), "meshctl: ")
	if a.jsonOut {
		code := "error"
		var ce *client.Error
		switch {
		case usage:
			code = "usage"
		case errors.As(err, &ce) && ce.Code != "":
			code = ce.Code
		case errors.Is(err, client.ErrUnreachable):
			code = "unreachable"
		}
		b, _ := json.Marshal(map[string]string{"error": msg, "code": code})
		fmt.Fprintf(a.stderr, "%s\n", b)
		return
	}
	if usage {
		msg += " (see 'meshctl --help')"
	}
	fmt.Fprintf(a.stderr, "meshctl: %s\n", msg)
}

// message is the one line a user reads for err: client errors keep
// meshd's words without the Go package prefix.
func (a *app) message(err error) string {
	msg := err.Error()
	if errors.Is(err, client.ErrNotMeshd) {
		return a.api + ": " + msg
	}
	return strings.TrimPrefix(msg, "client: ")
}

func (a *app) connect() error {
	enc, err := codecFor(a.encoding)
	if err != nil {
		return err
	}
	a.enc = enc
	token := ""
	if a.tokenFile != "" {
		b, err := os.ReadFile(a.tokenFile)
		if err != nil {
			return fmt.Errorf("reading --token-file: %v", err)
		}
		token = strings.TrimSpace(string(b))
	}
	hc := a.httpClient
	if hc == nil {
		// No overall timeout: watch, backup and restore stream for long.
		// Dial timeout only, so a dead address fails fast.
		hc = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&netDialer{timeout: a.timeout}).DialContext,
			TLSHandshakeTimeout: a.timeout,
		}}
	}
	c, err := client.New(a.api, client.Options{Token: token, HTTPClient: hc})
	if err != nil {
		return usageErrorf("--api must be HOST[:PORT] or http://HOST:PORT, got %q", a.api)
	}
	a.c = c
	return nil
}

const rootLong = `meshctl talks to meshd's HTTP API.

--api is HOST:PORT, a bare HOST (port 7700, meshd's default), or a URL
http://HOST:PORT (https:// for meshd behind a proxy; a URL without a port
uses its scheme's).

Plain output is the bare value, fit for shell scripts; --json prints JSON,
errors included (one line on stderr). --encoding hex or base64 reads every
KEY, VALUE and MEMBER argument in that encoding and prints keys, values and
members in it, for binary data:

  meshctl --encoding hex get "$(meshctl --encoding hex keys | head -1)"`

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "meshctl",
		Short:         "Command-line client for meshd, the gossipmesh daemon",
		Long:          rootLong,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringVar(&a.api, "api", envOr("MESHCTL_API", "127.0.0.1:7700"), "meshd API address: HOST[:PORT] (port 7700 if none) or http(s)://HOST:PORT (env MESHCTL_API)")
	f.BoolVar(&a.jsonOut, "json", false, "print JSON instead of plain values, errors included")
	f.StringVar(&a.encoding, "encoding", "raw", "encoding of keys, values and members, given and printed: raw, hex or base64")
	f.StringVar(&a.tokenFile, "token-file", os.Getenv("MESHCTL_TOKEN_FILE"), "file holding the API bearer token (env MESHCTL_TOKEN_FILE)")
	f.DurationVar(&a.timeout, "connect-timeout", 5*time.Second, "how long to try connecting to meshd")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err.Error()} })
	_ = root.RegisterFlagCompletionFunc("encoding", cobra.FixedCompletions([]string{"raw", "hex", "base64"}, cobra.ShellCompDirectiveNoFileComp))

	root.AddCommand(a.kvCommands()...)
	root.AddCommand(
		a.watchCmd(),
		a.cmd("id", "Print this node's peer ID and multiaddrs", exactArgs(0), a.id),
		a.cmd("peers", "List live mesh members this node knows", exactArgs(0), a.peers),
		a.cmd("members", "List every member: alive, suspect, dead or left, with partitions held and addresses", exactArgs(0), a.members),
		a.cmd("join ADDR", "Make meshd dial the peer at ADDR (a multiaddr ending in /p2p/PEERID) and keep it", exactArgs(1), a.join),
		a.cmd("leave", "Make meshd announce its leave to the mesh and shut down", exactArgs(0), a.leave),
		a.waitCmd(),
		a.cmd("status", "Show per-partition Merkle roots, key counts and agreeing peers", exactArgs(0), a.status),
		a.cmd("backup FILE", "Write a verified backup of the node to FILE (sealed when its store is encrypted: restore needs the same key)", exactArgs(1), a.backup),
		a.cmd("restore FILE", "Verify the backup FILE, then merge it into the node", exactArgs(1), a.restore),
		a.keygenCmd(),
		a.tokenCmd(),
		a.versionCmd(),
		a.healthCmd(),
	)
	return root
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (a *app) cmd(use, short string, args cobra.PositionalArgs, run func(ctx context.Context, args []string) error) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: args,
		RunE: func(cmd *cobra.Command, args []string) error { return run(cmd.Context(), args) },
	}
}

func exactArgs(n int) cobra.PositionalArgs { return rangeArgs(n, n) }

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= lo && len(args) <= hi {
			return nil
		}
		return usageErrorf("usage: meshctl %s", cmd.Use)
	}
}

// printJSON writes v as one line of JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func (a *app) ok() error {
	if a.jsonOut {
		return a.printJSON(map[string]bool{"ok": true})
	}
	return nil
}

func (a *app) lines(items []string) error {
	for _, s := range items {
		if _, err := fmt.Fprintln(a.stdout, s); err != nil {
			return err
		}
	}
	return nil
}
