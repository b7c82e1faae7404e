package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/gossipmesh/gossipmesh/node/httpapi"
)

// client talks to meshd's HTTP API (package httpapi).
type client struct {
	base  string // scheme://host:port, no trailing slash
	addr  string // as the user gave it, for messages
	token string
	http  *http.Client
}

// errNotReachable marks failures to connect at all, as opposed to errors
// meshd answered with.
var errNotReachable = errors.New("cannot reach meshd")

// apiError is an error answer from meshd.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string { return e.Msg }

func newClient(api, token string, hc *http.Client) (*client, error) {
	base := api
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, usageErrorf("--api must be HOST:PORT or http://HOST:PORT, got %q", api)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &client{base: strings.TrimRight(base, "/"), addr: api, token: token, http: hc}, nil
}

// keyPath escapes a key for a {key...} route. PathEscape turns "/" into
// %2F, so no part of a key looks like a path segment to clean; the keys "."
// and ".." are still dot segments that clients and servers resolve away, so
// their dots are escaped too.
func keyPath(route string, key string) string {
	if key == "." || key == ".." {
		return route + strings.ReplaceAll(key, ".", "%2E")
	}
	return route + url.PathEscape(key)
}

// do sends a request and returns the response when its status is 2xx; any
// other answer is turned into an *apiError carrying meshd's message.
func (c *client) do(ctx context.Context, method, path string, body io.Reader, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return c.send(req)
}

func (c *client) send(req *http.Request) (*http.Response, error) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(err)
	}
	if res.StatusCode/100 == 2 {
		return res, nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var eb struct{ Error string }
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		msg = eb.Error
	}
	if msg == "" {
		msg = res.Status
	}
	return nil, &apiError{Status: res.StatusCode, Msg: msg}
}

// transportError turns a connection failure into the one line a user
// needs: where we tried, and the system's reason.
func (c *client) transportError(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	reason := err.Error()
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		reason = "connection refused"
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		reason = "timed out"
	case errors.As(err, &dns):
		reason = dns.Error()
	case errors.As(err, &op):
		reason = op.Err.Error()
	}
	return fmt.Errorf("%w at %s: %s", errNotReachable, c.addr, reason)
}

func (c *client) getJSON(ctx context.Context, path string, v any) error {
	res, err := c.do(ctx, "GET", path, nil, nil)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	return decodeBody(res, v)
}

func (c *client) sendJSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	res, err := c.do(ctx, method, path, body, map[string]string{"Content-Type": "application/json"})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	return decodeBody(res, out)
}

func decodeBody(res *http.Response, v any) error {
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		return fmt.Errorf("bad answer from meshd: %v", err)
	}
	return nil
}

func (c *client) put(ctx context.Context, key string, value io.Reader) error {
	res, err := c.do(ctx, "PUT", keyPath("/v1/kv/", key), value, map[string]string{"Content-Type": "application/octet-stream"})
	if err != nil {
		return err
	}
	return res.Body.Close()
}

// getRaw returns the bare value bytes.
func (c *client) getRaw(ctx context.Context, key string) ([]byte, error) {
	res, err := c.do(ctx, "GET", keyPath("/v1/kv/", key)+"?raw=1", nil, nil)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	return io.ReadAll(res.Body)
}

func (c *client) get(ctx context.Context, key string) (httpapi.KVResponse, error) {
	var kv httpapi.KVResponse
	return kv, c.getJSON(ctx, keyPath("/v1/kv/", key), &kv)
}

func (c *client) del(ctx context.Context, key string) error {
	return c.sendJSON(ctx, "DELETE", keyPath("/v1/kv/", key), nil, nil)
}

func (c *client) keys(ctx context.Context, prefix string) ([]string, error) {
	var ks httpapi.KeysResponse
	return ks.Keys, c.getJSON(ctx, "/v1/keys?prefix="+url.QueryEscape(prefix), &ks)
}

func (c *client) incr(ctx context.Context, key string, delta int64) (int64, error) {
	var cr httpapi.CounterResponse
	err := c.sendJSON(ctx, "POST", keyPath("/v1/counter/", key), httpapi.CounterRequest{Delta: &delta}, &cr)
	return cr.Value, err
}

func (c *client) counter(ctx context.Context, key string) (int64, error) {
	var cr httpapi.CounterResponse
	return cr.Value, c.getJSON(ctx, keyPath("/v1/counter/", key), &cr)
}

func (c *client) setOp(ctx context.Context, method, key, member string) error {
	return c.sendJSON(ctx, method, keyPath("/v1/set/", key), httpapi.MemberRequest{Member: &member}, nil)
}

func (c *client) smembers(ctx context.Context, key string) ([]string, error) {
	var m httpapi.MembersResponse
	return m.Members, c.getJSON(ctx, keyPath("/v1/set/", key), &m)
}

func (c *client) id(ctx context.Context) (httpapi.IDResponse, error) {
	var v httpapi.IDResponse
	return v, c.getJSON(ctx, "/v1/id", &v)
}

func (c *client) peers(ctx context.Context) (httpapi.PeersResponse, error) {
	var v httpapi.PeersResponse
	return v, c.getJSON(ctx, "/v1/peers", &v)
}

func (c *client) status(ctx context.Context) (httpapi.StatusResponse, error) {
	var v httpapi.StatusResponse
	return v, c.getJSON(ctx, "/v1/status", &v)
}

// errWatchEnded: meshd ended the watch (it is shutting down, or this client
// fell too far behind).
var errWatchEnded = errors.New("meshd ended the watch")

// watch calls fn with each change event's JSON data until ctx ends (nil
// error) or meshd ends the stream (errWatchEnded).
func (c *client) watch(ctx context.Context, prefix string, fn func(data []byte) error) error {
	res, err := c.do(ctx, "GET", "/v1/watch?prefix="+url.QueryEscape(prefix), nil, map[string]string{"Accept": "text/event-stream"})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20) // an event carries up to a 1 MiB value, base64 twice over
	var event string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "change":
			if err := fn([]byte(strings.TrimPrefix(line, "data: "))); err != nil {
				return err
			}
		case line == "" && event == "end":
			return errWatchEnded
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("watch stream: %v", err)
	}
	return errWatchEnded
}

// backup streams a backup into w.
func (c *client) backup(ctx context.Context, w io.Writer) (int64, error) {
	res, err := c.do(ctx, "POST", "/v1/backup", nil, nil)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	n, err := io.Copy(w, res.Body)
	if err != nil {
		return n, fmt.Errorf("backup stream broke after %d bytes: %v", n, err)
	}
	return n, nil
}

// restore uploads a backup file of the given size.
func (c *client) restore(ctx context.Context, body io.Reader, size int64) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/v1/restore", body)
	if err != nil {
		return 0, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := c.send(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var rr httpapi.RestoreResponse
	return rr.Records, decodeBody(res, &rr)
}
