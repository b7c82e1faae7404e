package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

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
	tokenFile string
	timeout   time.Duration

	stdin          io.Reader
	stdout, stderr io.Writer
	httpClient     *http.Client // nil: http.DefaultClient; set by tests
	c              *client
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
	if errors.As(err, &ue) || !started {
		fmt.Fprintf(a.stderr, "meshctl: %s (see 'meshctl --help')\n", strings.TrimPrefix(err.Error(), "meshctl: "))
		return 2
	}
	fmt.Fprintf(a.stderr, "meshctl: %s\n", strings.TrimPrefix(err.Error(), "meshctl: "))
	return 1
}

func (a *app) connect() error {
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
	c, err := newClient(a.api, token, hc)
	if err != nil {
		return err
	}
	a.c = c
	return nil
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "meshctl",
		Short:         "Command-line client for meshd, the gossipmesh daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringVar(&a.api, "api", envOr("MESHCTL_API", "127.0.0.1:7700"), "meshd API address, HOST:PORT (env MESHCTL_API)")
	f.BoolVar(&a.jsonOut, "json", false, "print JSON instead of plain values")
	f.StringVar(&a.tokenFile, "token-file", os.Getenv("MESHCTL_TOKEN_FILE"), "file holding the API bearer token (env MESHCTL_TOKEN_FILE)")
	f.DurationVar(&a.timeout, "connect-timeout", 5*time.Second, "how long to try connecting to meshd")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err.Error()} })
	root.CompletionOptions.DisableDefaultCmd = true

	root.AddCommand(
		a.cmd("put KEY [VALUE]", "Set KEY to VALUE (read from stdin when VALUE is omitted)", rangeArgs(1, 2), a.put),
		a.cmd("get KEY", "Print the value of KEY", exactArgs(1), a.get),
		a.cmd("del KEY", "Delete KEY", exactArgs(1), a.del),
		a.keysCmd(),
		a.incrCmd(),
		a.cmd("counter KEY", "Print the value of counter KEY", exactArgs(1), a.counter),
		a.cmd("sadd KEY MEMBER", "Add MEMBER to set KEY", exactArgs(2), a.setOp("POST")),
		a.cmd("srem KEY MEMBER", "Remove MEMBER from set KEY", exactArgs(2), a.setOp("DELETE")),
		a.cmd("smembers KEY", "Print the members of set KEY, one per line", exactArgs(1), a.smembers),
		a.cmd("watch [PREFIX]", "Print changes to keys under PREFIX as they happen", rangeArgs(0, 1), a.watch),
		a.cmd("id", "Print this node's peer ID and multiaddrs", exactArgs(0), a.id),
		a.cmd("peers", "List connected mesh members", exactArgs(0), a.peers),
		a.cmd("status", "Show per-partition Merkle roots, key counts and agreeing peers", exactArgs(0), a.status),
		a.cmd("backup FILE", "Write a verified backup of the node to FILE (sealed when its store is encrypted: restore needs the same key)", exactArgs(1), a.backup),
		a.cmd("restore FILE", "Verify the backup FILE, then merge it into the node", exactArgs(1), a.restore),
		a.keygenCmd(),
		a.tokenCmd(),
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

// notFound rewords a 404 for the key the user named.
func notFound(err error, what, key string) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return fmt.Errorf("%s %q not found", what, key)
	}
	return err
}

func (a *app) put(ctx context.Context, args []string) error {
	var value io.Reader
	if len(args) == 2 {
		value = strings.NewReader(args[1])
	} else {
		b, err := io.ReadAll(a.stdin)
		if err != nil {
			return fmt.Errorf("reading value from stdin: %v", err)
		}
		value = strings.NewReader(string(b))
	}
	if err := a.c.put(ctx, args[0], value); err != nil {
		return err
	}
	return a.ok()
}

func (a *app) get(ctx context.Context, args []string) error {
	if a.jsonOut {
		kv, err := a.c.get(ctx, args[0])
		if err != nil {
			return notFound(err, "key", args[0])
		}
		return a.printJSON(kv)
	}
	v, err := a.c.getRaw(ctx, args[0])
	if err != nil {
		return notFound(err, "key", args[0])
	}
	if _, err := a.stdout.Write(v); err != nil {
		return err
	}
	// The exact bytes go to pipes and files; a terminal gets a newline so
	// the prompt does not land on the value's line.
	if isTerminal(a.stdout) {
		_, err = io.WriteString(a.stdout, "\n")
	}
	return err
}

func (a *app) del(ctx context.Context, args []string) error {
	if err := a.c.del(ctx, args[0]); err != nil {
		return err
	}
	return a.ok()
}

func (a *app) keysCmd() *cobra.Command {
	var prefix string
	c := a.cmd("keys", "List keys, one per line", exactArgs(0), func(ctx context.Context, _ []string) error {
		ks, err := a.c.keys(ctx, prefix)
		if err != nil {
			return err
		}
		if a.jsonOut {
			return a.printJSON(map[string][]string{"keys": ks})
		}
		return a.lines(ks)
	})
	c.Flags().StringVar(&prefix, "prefix", "", "only keys starting with this prefix")
	return c
}

func (a *app) lines(items []string) error {
	for _, s := range items {
		if _, err := fmt.Fprintln(a.stdout, s); err != nil {
			return err
		}
	}
	return nil
}

func (a *app) printCounter(key string, v int64) error {
	if a.jsonOut {
		return a.printJSON(map[string]any{"key": key, "value": v})
	}
	_, err := fmt.Fprintln(a.stdout, v)
	return err
}

func (a *app) incrCmd() *cobra.Command {
	c := a.cmd("incr KEY [N]", "Add N (default 1, may be negative) to counter KEY and print it", rangeArgs(1, 2), a.incr)
	// Stop flag parsing at KEY so that a negative N ("incr k -2") is an
	// argument, not an unknown flag.
	c.Flags().SetInterspersed(false)
	return c
}

func (a *app) incr(ctx context.Context, args []string) error {
	delta := int64(1)
	if len(args) == 2 {
		d, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil {
			return usageErrorf("incr: N must be an integer, got %q", args[1])
		}
		delta = d
	}
	v, err := a.c.incr(ctx, args[0], delta)
	if err != nil {
		return err
	}
	return a.printCounter(args[0], v)
}

func (a *app) counter(ctx context.Context, args []string) error {
	v, err := a.c.counter(ctx, args[0])
	if err != nil {
		return notFound(err, "counter", args[0])
	}
	return a.printCounter(args[0], v)
}

func (a *app) setOp(method string) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		if err := a.c.setOp(ctx, method, args[0], args[1]); err != nil {
			return err
		}
		return a.ok()
	}
}

func (a *app) smembers(ctx context.Context, args []string) error {
	ms, err := a.c.smembers(ctx, args[0])
	if err != nil {
		return notFound(err, "set", args[0])
	}
	if a.jsonOut {
		return a.printJSON(map[string]any{"key": args[0], "members": ms})
	}
	return a.lines(ms)
}
