package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/url"

	"github.com/gossipmesh/gossipmesh/node/httpapi/apitypes"
)

// Put sets key to value (last-writer-wins register).
func (c *Client) Put(ctx context.Context, key, value []byte) error {
	res, err := c.do(ctx, "PUT", keyPath("/v1/kv/", key), bytes.NewReader(value), map[string]string{"Content-Type": "application/octet-stream"})
	if err != nil {
		return err
	}
	return res.Body.Close()
}

// Get returns the value of key; ErrNotFound if it holds none.
func (c *Client) Get(ctx context.Context, key []byte) ([]byte, error) {
	res, err := c.do(ctx, "GET", keyPath("/v1/kv/", key)+"?raw=1", nil, nil)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	return io.ReadAll(res.Body)
}

// Delete deletes key.
func (c *Client) Delete(ctx context.Context, key []byte) error {
	return c.sendJSON(ctx, "DELETE", keyPath("/v1/kv/", key), nil, nil)
}

// PutMV writes value to the multi-value register key.
func (c *Client) PutMV(ctx context.Context, key, value []byte) error {
	res, err := c.do(ctx, "PUT", keyPath("/v1/mv/", key), bytes.NewReader(value), map[string]string{"Content-Type": "application/octet-stream"})
	if err != nil {
		return err
	}
	return res.Body.Close()
}

// GetMV returns the values of the multi-value register key (siblings of
// concurrent writes).
func (c *Client) GetMV(ctx context.Context, key []byte) ([][]byte, error) {
	var v apitypes.ValuesResponse
	if err := c.getJSON(ctx, keyPath("/v1/mv/", key)+"?encoding=base64", &v); err != nil {
		return nil, err
	}
	return decodeList(v.Values)
}

// KeysOptions selects what Keys lists.
type KeysOptions struct {
	Prefix []byte // only keys starting with Prefix
	// Local lists only the keys this node stores. Default false: with
	// replication R > 0, the keys of every partition, asked of holders.
	Local bool
}

// Keys lists keys in byte order. It reports whether the list is only the
// node's own keys (asked for, or meshd could not ask other holders).
func (c *Client) Keys(ctx context.Context, opts KeysOptions) (keys [][]byte, local bool, err error) {
	q := url.Values{"prefix": {string(opts.Prefix)}, "encoding": {"base64"}}
	if opts.Local {
		q.Set("local", "1")
	}
	var ks apitypes.KeysResponse
	if err := c.getJSON(ctx, "/v1/keys?"+q.Encode(), &ks); err != nil {
		return nil, false, err
	}
	keys, err = decodeList(ks.Keys)
	return keys, ks.Local, err
}

// Incr adds delta (negative to subtract) to counter key and returns its
// new value.
func (c *Client) Incr(ctx context.Context, key []byte, delta int64) (int64, error) {
	var cr apitypes.CounterResponse
	err := c.sendJSON(ctx, "POST", keyPath("/v1/counter/", key), apitypes.CounterRequest{Delta: &delta}, &cr)
	return cr.Value, err
}

// Counter returns the value of counter key.
func (c *Client) Counter(ctx context.Context, key []byte) (int64, error) {
	var cr apitypes.CounterResponse
	return cr.Value, c.getJSON(ctx, keyPath("/v1/counter/", key), &cr)
}

// SAdd adds member to set key.
func (c *Client) SAdd(ctx context.Context, key, member []byte) error {
	return c.setOp(ctx, "POST", key, member)
}

// SRem removes member from set key.
func (c *Client) SRem(ctx context.Context, key, member []byte) error {
	return c.setOp(ctx, "DELETE", key, member)
}

func (c *Client) setOp(ctx context.Context, method string, key, member []byte) error {
	m := base64.StdEncoding.EncodeToString(member)
	return c.sendJSON(ctx, method, keyPath("/v1/set/", key), apitypes.MemberRequest{MemberB64: &m}, nil)
}

// SMembers returns the members of set key, sorted bytewise.
func (c *Client) SMembers(ctx context.Context, key []byte) ([][]byte, error) {
	var m apitypes.MembersResponse
	if err := c.getJSON(ctx, keyPath("/v1/set/", key)+"?encoding=base64", &m); err != nil {
		return nil, err
	}
	return decodeList(m.Members)
}

func decodeList(in []string) ([][]byte, error) {
	out := make([][]byte, len(in))
	for i, s := range in {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, badAnswer(err)
		}
		out[i] = b
	}
	return out, nil
}
