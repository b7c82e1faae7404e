package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gossipmesh/gossipmesh/node/httpapi"
	"github.com/gossipmesh/gossipmesh/simulations"
)

// api is the driver's client of one node's HTTP API, over the control
// network.
type api struct {
	base string // http://ip:7700
	hc   *http.Client
}

// errStatus is an unexpected HTTP status, with the error body.
type errStatus struct {
	code int
	body string
}

func (e *errStatus) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.body) }

func (a api) do(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	res, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<10))
		return fmt.Errorf("%w: %s %s: %w", ErrNode, method, path, &errStatus{res.StatusCode, strings.TrimSpace(string(b))})
	}
	if out == nil {
		_, err = io.Copy(io.Discard, res.Body)
		return err
	}
	if w, ok := out.(io.Writer); ok {
		_, err = io.Copy(w, res.Body)
		return err
	}
	return json.NewDecoder(res.Body).Decode(out)
}

func keyPath(prefix, key string) string { return prefix + url.PathEscape(key) }

// apply performs one workload op through the HTTP API.
func (a api) apply(ctx context.Context, op *simulations.Op) error {
	switch op.Kind {
	case simulations.OpPut:
		return a.do(ctx, http.MethodPut, keyPath("/v1/kv/", op.Key), []byte(op.Value), http.StatusNoContent, nil)
	case simulations.OpDelete:
		return a.do(ctx, http.MethodDelete, keyPath("/v1/kv/", op.Key), nil, http.StatusNoContent, nil)
	case simulations.OpIncr:
		return a.do(ctx, http.MethodPost, keyPath("/v1/counter/", op.Key), httpapi.CounterRequest{Delta: &op.Delta}, http.StatusOK, nil)
	case simulations.OpSAdd:
		return a.do(ctx, http.MethodPost, keyPath("/v1/set/", op.Key), httpapi.MemberRequest{Member: &op.Value}, http.StatusNoContent, nil)
	case simulations.OpSRem:
		return a.do(ctx, http.MethodDelete, keyPath("/v1/set/", op.Key), httpapi.MemberRequest{Member: &op.Value}, http.StatusNoContent, nil)
	}
	return fmt.Errorf("cluster: op kind %v", op.Kind)
}

func (a api) id(ctx context.Context) (httpapi.IDResponse, error) {
	var r httpapi.IDResponse
	return r, a.do(ctx, http.MethodGet, "/v1/id", nil, http.StatusOK, &r)
}

func (a api) peers(ctx context.Context) ([]string, error) {
	var r httpapi.PeersResponse
	if err := a.do(ctx, http.MethodGet, "/v1/peers", nil, http.StatusOK, &r); err != nil {
		return nil, err
	}
	out := make([]string, len(r.Peers))
	for i, p := range r.Peers {
		out[i] = p.PeerID
	}
	sort.Strings(out)
	return out, nil
}

// status returns the node's GET /v1/status.
func (a api) status(ctx context.Context) (httpapi.StatusResponse, error) {
	var st httpapi.StatusResponse
	err := a.do(ctx, http.MethodGet, "/v1/status", nil, http.StatusOK, &st)
	return st, err
}

// rootString is a status's per-partition roots as one comparable string.
func rootString(st httpapi.StatusResponse) string {
	var b strings.Builder
	for _, p := range st.Partitions {
		fmt.Fprintf(&b, "%d:%s,", p.Partition, p.Root)
	}
	return b.String()
}

// partitionRoots returns the node's root of each of the n partitions, by
// partition index (empty for one it does not report).
func (a api) partitionRoots(ctx context.Context, n int) ([]string, error) {
	var st httpapi.StatusResponse
	if err := a.do(ctx, http.MethodGet, "/v1/status", nil, http.StatusOK, &st); err != nil {
		return nil, err
	}
	out := make([]string, n)
	for _, p := range st.Partitions {
		if int(p.Partition) < n {
			out[p.Partition] = p.Root
		}
	}
	return out, nil
}

// sentBytes is what a node's /metrics reports it sent: in all, by gossip
// (GossipSub's /meshsub protocols) and by anti-entropy.
type sentBytes struct{ total, gossip, sync uint64 }

// bytesSent reads gossipmesh_bytes_sent_total, per protocol, from /metrics.
func (a api) bytesSent(ctx context.Context) (sentBytes, error) {
	var buf bytes.Buffer
	if err := a.do(ctx, http.MethodGet, "/metrics", nil, http.StatusOK, &buf); err != nil {
		return sentBytes{}, err
	}
	var out sentBytes
	for line := range strings.SplitSeq(buf.String(), "\n") {
		if !strings.HasPrefix(line, "gossipmesh_bytes_sent_total") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		out.total += uint64(v)
		switch {
		case strings.Contains(line, `protocol="/meshsub/`):
			out.gossip += uint64(v)
		case strings.Contains(line, `protocol="/gossipmesh/sync/`):
			out.sync += uint64(v)
		}
	}
	return out, nil
}

// backup fetches every key state (POST /v1/backup).
func (a api) backup(ctx context.Context) ([]byte, error) {
	var buf bytes.Buffer
	err := a.do(ctx, http.MethodPost, "/v1/backup", nil, http.StatusOK, &buf)
	return buf.Bytes(), err
}

// register reads a register's live value; ok is false when absent or
// deleted.
func (a api) register(ctx context.Context, key string) (val string, ok bool, err error) {
	var buf bytes.Buffer
	err = a.do(ctx, http.MethodGet, keyPath("/v1/kv/", key)+"?raw=1", nil, http.StatusOK, &buf)
	if isStatus(err, http.StatusNotFound) {
		return "", false, nil
	}
	return buf.String(), err == nil, err
}

func (a api) counter(ctx context.Context, key string) (int64, error) {
	var r httpapi.CounterResponse
	err := a.do(ctx, http.MethodGet, keyPath("/v1/counter/", key), nil, http.StatusOK, &r)
	if isStatus(err, http.StatusNotFound) {
		return 0, nil
	}
	return r.Value, err
}

func (a api) members(ctx context.Context, key string) ([]string, error) {
	var r httpapi.MembersResponse
	err := a.do(ctx, http.MethodGet, keyPath("/v1/set/", key), nil, http.StatusOK, &r)
	if isStatus(err, http.StatusNotFound) {
		return nil, nil
	}
	sort.Strings(r.Members)
	return r.Members, err
}

func isStatus(err error, code int) bool {
	var es *errStatus
	return errors.As(err, &es) && es.code == code
}

// waitFor polls cond every interval until it returns true or the deadline
// passes, returning cond's last error (or a timeout).
func waitFor(ctx context.Context, within, every time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("cluster: %s: not within %v: %w", what, within, err)
			}
			return fmt.Errorf("cluster: %s: not within %v", what, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
