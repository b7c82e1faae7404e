package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/gossipmesh/gossipmesh/node/httpapi/client"
	"github.com/spf13/cobra"
)

func (a *app) kvCommands() []*cobra.Command {
	return []*cobra.Command{
		a.cmd("put KEY [VALUE]", "Set KEY to VALUE (read from stdin when VALUE is omitted)", rangeArgs(1, 2), a.put),
		a.cmd("get KEY", "Print the value of KEY", exactArgs(1), a.get),
		a.cmd("del KEY", "Delete KEY", exactArgs(1), a.del),
		a.keysCmd(),
		a.incrCmd(),
		a.cmd("counter KEY", "Print the value of counter KEY", exactArgs(1), a.counter),
		a.cmd("sadd KEY MEMBER", "Add MEMBER to set KEY", exactArgs(2), a.setOp(true)),
		a.cmd("srem KEY MEMBER", "Remove MEMBER from set KEY", exactArgs(2), a.setOp(false)),
		a.cmd("smembers KEY", "Print the members of set KEY, one per line", exactArgs(1), a.smembers),
	}
}

// notFound rewords meshd's 404 for the key the user named; another
// server's 404 is not a missing key (client.ErrNotMeshd).
func notFound(err error, what, arg string) error {
	if errors.Is(err, client.ErrNotFound) {
		return &reworded{msg: fmt.Sprintf("%s %q not found", what, arg), err: err}
	}
	return err
}

// reworded is an error with a message for the user that still unwraps to
// its cause (for --json's error code).
type reworded struct {
	msg string
	err error
}

func (r *reworded) Error() string { return r.msg }
func (r *reworded) Unwrap() error { return r.err }

func (a *app) put(ctx context.Context, args []string) error {
	key, err := a.key(args[0])
	if err != nil {
		return err
	}
	var value []byte
	if len(args) == 2 {
		value, err = a.enc.decode("VALUE", args[1])
	} else {
		b, rerr := io.ReadAll(a.stdin)
		if rerr != nil {
			return fmt.Errorf("reading value from stdin: %v", rerr)
		}
		s := string(b)
		if a.enc != encRaw {
			s = trimNewline(s) // an encoded value is text: echo's newline is not part of it
		}
		value, err = a.enc.decode("VALUE", s)
	}
	if err != nil {
		return err
	}
	if err := a.c.Put(ctx, key, value); err != nil {
		return err
	}
	return a.ok()
}

func trimNewline(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

func (a *app) get(ctx context.Context, args []string) error {
	key, err := a.key(args[0])
	if err != nil {
		return err
	}
	v, err := a.c.Get(ctx, key)
	if err != nil {
		return notFound(err, "key", args[0])
	}
	if a.jsonOut {
		out := map[string]any{"key": a.enc.encode(key), "value_b64": base64.StdEncoding.EncodeToString(v)}
		if a.enc != encRaw || utf8.Valid(v) {
			out["value"] = a.enc.encode(v)
		}
		return a.printJSON(out)
	}
	if a.enc != encRaw {
		_, err = fmt.Fprintln(a.stdout, a.enc.encode(v))
		return err
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
	key, err := a.key(args[0])
	if err != nil {
		return err
	}
	if err := a.c.Delete(ctx, key); err != nil {
		return err
	}
	return a.ok()
}

func (a *app) keysCmd() *cobra.Command {
	var prefix string
	var local bool
	c := a.cmd("keys", "List the keys of the whole mesh, one per line (--local: only this node's)", exactArgs(0), func(ctx context.Context, _ []string) error {
		p, err := a.enc.decode("--prefix", prefix)
		if err != nil {
			return err
		}
		ks, isLocal, err := a.c.Keys(ctx, client.KeysOptions{Prefix: p, Local: local})
		if err != nil {
			return err
		}
		return a.printList("keys", ks, map[string]any{"local": isLocal})
	})
	c.Long = `List keys in byte order, one per line.

By default the keys of the whole mesh: with replication R > 0 a node stores
only some partitions, and meshd asks a holder of each other partition for
its keys (it fails if no holder of some partition answers). --local lists
only the keys this node stores, without asking anyone.`
	c.Flags().StringVar(&prefix, "prefix", "", "only keys starting with this prefix (in --encoding)")
	c.Flags().BoolVar(&local, "local", false, "only the keys this node stores")
	return c
}

// printList prints byte strings one per line in --encoding, or as JSON
// {field: [...], extra...}.
func (a *app) printList(field string, items [][]byte, extra map[string]any) error {
	out := make([]string, len(items))
	for i, b := range items {
		out[i] = a.enc.encode(b)
	}
	if a.jsonOut {
		obj := map[string]any{field: out}
		for k, v := range extra {
			obj[k] = v
		}
		return a.printJSON(obj)
	}
	return a.lines(out)
}

func (a *app) printCounter(key []byte, v int64) error {
	if a.jsonOut {
		return a.printJSON(map[string]any{"key": a.enc.encode(key), "value": v})
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
	key, err := a.key(args[0])
	if err != nil {
		return err
	}
	delta := int64(1)
	if len(args) == 2 {
		d, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil {
			return usageErrorf("incr: N must be an integer, got %q", args[1])
		}
		delta = d
	}
	v, err := a.c.Incr(ctx, key, delta)
	if err != nil {
		return err
	}
	return a.printCounter(key, v)
}

func (a *app) counter(ctx context.Context, args []string) error {
	key, err := a.key(args[0])
	if err != nil {
		return err
	}
	v, err := a.c.Counter(ctx, key)
	if err != nil {
		return notFound(err, "counter", args[0])
	}
	return a.printCounter(key, v)
}

func (a *app) setOp(add bool) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		key, err := a.key(args[0])
		if err != nil {
			return err
		}
		m, err := a.enc.decode("MEMBER", args[1])
		if err != nil {
			return err
		}
		if add {
			err = a.c.SAdd(ctx, key, m)
		} else {
			err = a.c.SRem(ctx, key, m)
		}
		if err != nil {
			return err
		}
		return a.ok()
	}
}

func (a *app) smembers(ctx context.Context, args []string) error {
	key, err := a.key(args[0])
	if err != nil {
		return err
	}
	ms, err := a.c.SMembers(ctx, key)
	if err != nil {
		return notFound(err, "set", args[0])
	}
	return a.printList("members", ms, map[string]any{"key": a.enc.encode(key)})
}
