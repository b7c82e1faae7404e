package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// keyOf returns the {key...} path value; the mux has already decoded it.
func keyOf(r *http.Request) []byte { return []byte(r.PathValue("key")) }

// bytesList renders byte strings for JSON as text, or as standard base64
// when the request says ?encoding=base64 (binary-safe).
func bytesList(r *http.Request, vals [][]byte) ([]string, error) {
	b64, err := wantBase64(r)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		if b64 {
			out[i] = base64.StdEncoding.EncodeToString(v)
		} else {
			out[i] = string(v)
		}
	}
	return out, nil
}

func wantBase64(r *http.Request) (bool, error) {
	switch enc := r.URL.Query().Get("encoding"); enc {
	case "", "text":
		return false, nil
	case "base64":
		return true, nil
	default:
		return false, badRequest("encoding must be text or base64, got %q", enc)
	}
}

// readBody reads a whole (already size-limited) request body.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var maxBytes *http.MaxBytesError
		if errors.As(err, &maxBytes) {
			return nil, err
		}
		return nil, badRequest("reading body: %v", err)
	}
	return b, nil
}

// decodeJSON decodes an optional JSON body into v; an empty body leaves v
// as it is, so simple calls need no body at all.
func decodeJSON(r *http.Request, v any) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("bad JSON body: %v", err)
	}
	if dec.More() {
		return badRequest("bad JSON body: data after the object")
	}
	return nil
}

func (s *server) putKV(w http.ResponseWriter, r *http.Request) {
	value, err := readBody(r)
	if err == nil {
		err = s.b.Put(r.Context(), keyOf(r), value)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// wantRaw: ?raw=1 or an Accept header asking for octet-stream returns the
// bare value, which is what shell scripts and binary values need.
func wantRaw(r *http.Request) bool {
	if raw := r.URL.Query().Get("raw"); raw != "" {
		ok, _ := strconv.ParseBool(raw)
		return ok
	}
	return strings.Contains(r.Header.Get("Accept"), "application/octet-stream")
}

func (s *server) getKV(w http.ResponseWriter, r *http.Request) {
	key := keyOf(r)
	value, err := s.b.Get(r.Context(), key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if wantRaw(r) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(value)))
		_, _ = w.Write(value)
		return
	}
	resp := KVResponse{Key: string(key), ValueB64: base64.StdEncoding.EncodeToString(value)}
	if utf8.Valid(value) {
		v := string(value)
		resp.Value = &v
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *server) deleteKV(w http.ResponseWriter, r *http.Request) {
	if err := s.b.Delete(r.Context(), keyOf(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) putMV(w http.ResponseWriter, r *http.Request) {
	value, err := readBody(r)
	if err == nil {
		err = s.b.WriteMV(r.Context(), keyOf(r), value)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) getMV(w http.ResponseWriter, r *http.Request) {
	key := keyOf(r)
	vals, err := s.b.GetMV(r.Context(), key)
	var out []string
	if err == nil {
		out, err = bytesList(r, vals)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ValuesResponse{Key: string(key), Values: out})
}

// keys lists the keys of the whole mesh (MeshKeys: under replication, the
// partitions held elsewhere are asked of a holder), or with ?local=1 only
// those this node stores.
func (s *server) keys(w http.ResponseWriter, r *http.Request) {
	prefix := []byte(r.URL.Query().Get("prefix"))
	local, _ := strconv.ParseBool(r.URL.Query().Get("local"))
	var keys [][]byte
	var err error
	if local {
		keys, err = s.localKeys(r, prefix)
	} else {
		keys, err = s.b.MeshKeys(r.Context(), prefix)
	}
	var out []string
	if err == nil {
		out, err = bytesList(r, keys)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, KeysResponse{Keys: out, Local: local})
}

// localKeys collects the node's own keys before answering, so a failure
// mid-scan still gets an error status rather than a cut-off 200.
func (s *server) localKeys(r *http.Request, prefix []byte) ([][]byte, error) {
	var keys [][]byte
	for k, err := range s.b.Keys(r.Context(), prefix) {
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func (s *server) incr(w http.ResponseWriter, r *http.Request) {
	var req CounterRequest
	if err := decodeJSON(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	delta := int64(1)
	if req.Delta != nil {
		delta = *req.Delta
	}
	key := keyOf(r)
	v, err := s.b.Incr(r.Context(), key, delta)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, CounterResponse{Key: string(key), Value: v})
}

func (s *server) counter(w http.ResponseWriter, r *http.Request) {
	key := keyOf(r)
	v, err := s.b.Counter(r.Context(), key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, CounterResponse{Key: string(key), Value: v})
}

func memberOf(r *http.Request) ([]byte, error) {
	var req MemberRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	if m, ok := r.URL.Query()["member"]; ok && req.Member == nil && req.MemberB64 == nil {
		return []byte(m[0]), nil
	}
	switch {
	case req.Member != nil && req.MemberB64 != nil:
		return nil, badRequest("give member or member_b64, not both")
	case req.Member != nil:
		return []byte(*req.Member), nil
	case req.MemberB64 != nil:
		b, err := base64.StdEncoding.DecodeString(*req.MemberB64)
		if err != nil {
			return nil, badRequest("member_b64: %v", err)
		}
		return b, nil
	}
	return nil, badRequest(`body must be {"member": "..."}`)
}

func (s *server) sadd(w http.ResponseWriter, r *http.Request) {
	m, err := memberOf(r)
	if err == nil {
		err = s.b.SAdd(r.Context(), keyOf(r), m)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) srem(w http.ResponseWriter, r *http.Request) {
	m, err := memberOf(r)
	if err == nil {
		err = s.b.SRem(r.Context(), keyOf(r), m)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) smembers(w http.ResponseWriter, r *http.Request) {
	key := keyOf(r)
	ms, err := s.b.SMembers(r.Context(), key)
	var out []string
	if err == nil {
		out, err = bytesList(r, ms)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, MembersResponse{Key: string(key), Members: out})
}
