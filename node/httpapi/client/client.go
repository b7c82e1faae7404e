package client

import (
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

	"github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"
)

// DefaultPort is meshd's API port, used when an address names none.
const DefaultPort = "7700"

// Options configures New. The zero value is usable.
type Options struct {
	// Token is sent as "Authorization: Bearer <Token>". Default "": none.
	Token string
	// HTTPClient sends the requests. Default http.DefaultClient. Watch and
	// Backup stream for long: give it no overall Timeout.
	HTTPClient *http.Client
}

// Client talks to one meshd. It is safe for concurrent use.
type Client struct {
	base  string // scheme://host:port, no trailing slash
	addr  string // as given
	where string // host:port, for messages
	token string
	http  *http.Client
}

// New returns a client of the meshd at addr: HOST:PORT, HOST (port 7700),
// or a URL http://HOST[:PORT] or https://... (a URL without a port uses
// its scheme's, for meshd behind a proxy).
func New(addr string, opts Options) (*Client, error) {
	base, err := baseURL(addr)
	if err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	where := strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://")
	return &Client{base: base, addr: addr, where: where, token: opts.Token, http: hc}, nil
}

func baseURL(addr string) (string, error) {
	bad := func() (string, error) {
		return "", fmt.Errorf("%w: want HOST:PORT or http://HOST:PORT, got %q", ErrInvalidAddr, addr)
	}
	if !strings.Contains(addr, "://") {
		if addr == "" || strings.ContainsAny(addr, "/?#") {
			return bad()
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(strings.Trim(addr, "[]"), DefaultPort)
		}
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return bad()
	}
	return u.Scheme + "://" + u.Host, nil
}

// Addr is the address the client was made with.
func (c *Client) Addr() string { return c.addr }

// keyPath escapes a key for a {key...} route. PathEscape turns "/" into
// %2F, so no part of a key looks like a path segment to clean; the keys "."
// and ".." are still dot segments that clients and servers resolve away, so
// their dots are escaped too.
func keyPath(route string, key []byte) string {
	k := string(key)
	if k == "." || k == ".." {
		return route + strings.ReplaceAll(k, ".", "%2E")
	}
	return route + url.PathEscape(k)
}

// do sends a request and returns the response when its status is 2xx; any
// other answer is turned into an *Error.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return c.send(req)
}

func (c *Client) send(req *http.Request) (*http.Response, error) {
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
	return nil, answerError(res)
}

// answerError reads an error answer. meshd's carry the API header and a
// JSON body; anything else is described, not trusted.
func answerError(res *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var eb apitypes.ErrorResponse
	isJSON := json.Unmarshal(b, &eb) == nil && eb.Error != ""
	meshd := res.Header.Get(apitypes.APIHeader) != "" || isJSON
	if !meshd || !isJSON {
		return &Error{Status: res.StatusCode, Meshd: false,
			Message: fmt.Sprintf("the server answered %s, not as meshd does (is this meshd's API address?)", res.Status)}
	}
	return &Error{Status: res.StatusCode, Code: eb.Code, Message: eb.Error, Meshd: true}
}

// transportError turns a connection failure into the one line a user
// needs: where we tried, and the system's reason.
func (c *Client) transportError(err error) error {
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
	return fmt.Errorf("%w at %s: %s", ErrUnreachable, c.where, reason)
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	res, err := c.do(ctx, "GET", path, nil, nil)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	return decodeBody(res, v)
}

func (c *Client) sendJSON(ctx context.Context, method, path string, in, out any) error {
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
		return badAnswer(err)
	}
	return nil
}
