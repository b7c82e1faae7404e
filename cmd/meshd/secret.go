package main

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/libp2p/go-libp2p/core/pnet"
)

// secretFile is where meshd keeps the mesh secret it made or was given by
// a join token, in the data directory.
const secretFile = "swarm.key"

// meshSecret is the private mesh's swarm key as meshd resolved it.
type meshSecret struct {
	key     []byte // 32 bytes; nil for an open mesh (--open)
	file    string // where it is kept; "" in memory
	created bool   // made by this start: the join token is printed
	pending bool   // file is still to be written (persist), once the node runs
}

// persist writes a new secret to its file. It is called once the node has
// started, so a start that fails (a port in use, say) leaves no secret of a
// mesh that never ran, which would then refuse the join token of the mesh
// the operator meant.
func (m *meshSecret) persist() error {
	if !m.pending {
		return nil
	}
	if err := os.WriteFile(m.file, swarmKeyFile(m.key), 0o600); err != nil {
		return fmt.Errorf("meshd: mesh secret: %v", err)
	}
	m.pending = false
	return nil
}

// applyJoinToken folds --join-token into the settings: the mesh's
// identity where the settings leave the default (a value set otherwise is
// a conflict), and its members as bootstrap peers. The secret itself is
// kept for resolveSecret.
func (s *settings) applyJoinToken() error {
	if s.JoinToken == "" {
		return nil
	}
	if s.Open || s.SwarmKey != "" {
		return usagef("--join-token carries the mesh secret: it goes without --open and --swarm-key")
	}
	t, err := decodeToken(s.JoinToken)
	if err != nil {
		return usagef("--join-token: %s", strings.TrimPrefix(err.Error(), "meshd: "))
	}
	def := defaultSettings()
	if err := adopt("--mesh", &s.Mesh, def.Mesh, t.Mesh); err != nil {
		return err
	}
	if err := adopt("--partitions", &s.Partitions, def.Partitions, t.Partitions); err != nil {
		return err
	}
	if err := adopt("--replication", &s.Replication, def.Replication, t.Replication); err != nil {
		return err
	}
	s.Bootstrap = append(s.Bootstrap, t.Addrs...)
	s.tokenKey, _ = decodeHexKey(t.Key) // checked by decodeToken
	return nil
}

// adopt sets *cur to the token's value when it is still the default, and
// refuses a setting that contradicts the token.
func adopt[T comparable](flagName string, cur *T, def, tok T) error {
	switch *cur {
	case tok:
	case def:
		*cur = tok
	default:
		return usagef("%s %v, but the join token is for a mesh with %v", flagName, *cur, tok)
	}
	return nil
}

// resolveSecret finds the mesh secret: --open has none; --swarm-key names
// the operator's file; a join token's is kept in the data directory; else
// the data directory's, made on the first start. With --memory the
// secret lives as long as the process.
func resolveSecret(s *settings, log *slog.Logger) (meshSecret, error) {
	switch {
	case s.Open:
		log.Warn("open mesh (--open): any node that finds this one (mDNS on the LAN, a bootstrap address) may join and read and write its data")
		return meshSecret{}, nil
	case s.SwarmKey != "":
		key, err := readSwarmKey(s.SwarmKey)
		return meshSecret{key: key, file: s.SwarmKey}, err
	case s.tokenKey != nil:
		return keepSecret(s, s.tokenKey)
	}
	if !s.Memory {
		path := filepath.Join(s.Data, secretFile)
		key, err := readSwarmKey(path)
		if err == nil {
			return meshSecret{key: key, file: path}, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return meshSecret{}, err
		}
	}
	key := make([]byte, swarmKeyBytes)
	if _, err := rand.Read(key); err != nil {
		return meshSecret{}, err
	}
	sec, err := keepSecret(s, key)
	sec.created = true
	return sec, err
}

// keepSecret plans to keep key in the data directory (not with --memory;
// persist writes it). A data directory that already holds another mesh's
// secret is refused: its data belongs to that mesh and would leak into
// this one.
func keepSecret(s *settings, key []byte) (meshSecret, error) {
	if s.Memory {
		return meshSecret{key: key}, nil
	}
	path := filepath.Join(s.Data, secretFile)
	old, err := readSwarmKey(path)
	switch {
	case err == nil && bytes.Equal(old, key):
		return meshSecret{key: key, file: path}, nil
	case err == nil:
		return meshSecret{}, usagef("%s holds the secret of another mesh than the join token's: this data directory belongs to that mesh (use another --data, or remove the file to move this node and its data)", path)
	case !errors.Is(err, fs.ErrNotExist):
		return meshSecret{}, err
	}
	return meshSecret{key: key, file: path, pending: true}, nil
}

// readSwarmKey reads a swarm key file; fs.ErrNotExist when there is none.
func readSwarmKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, usagef("mesh secret: %v", err)
	}
	defer f.Close()
	psk, err := pnet.DecodeV1PSK(f)
	if err != nil {
		return nil, usagef("mesh secret %s: %v", path, err)
	}
	return psk, nil
}

// tokenFor is the join token for the mesh n is in, naming n's addresses.
func tokenFor(s *settings, sec meshSecret, n *node.Node) string {
	addrs := n.Addrs()
	t := joinToken{
		V: tokenVersion, Mesh: s.Mesh, Partitions: s.Partitions, Replication: s.Replication,
		Key: hex.EncodeToString(sec.key), Addrs: make([]string, len(addrs)),
	}
	for i, a := range addrs {
		t.Addrs[i] = a.String()
	}
	return t.encode()
}

// tokenSource is GET /v1/token's source: nil in an open mesh, which has
// no token. The token is made at each request, as addresses change.
func tokenSource(s *settings, sec meshSecret, n *node.Node) func() string {
	if sec.key == nil {
		return nil
	}
	return func() string { return tokenFor(s, sec, n) }
}

// printSecret says at start what kind of mesh this is. The join token is
// printed when this start made the secret; later it is a secret kept out
// of logs, and meshctl token prints it.
func printSecret(w io.Writer, s *settings, sec meshSecret, n *node.Node) {
	switch {
	case sec.key == nil:
		fmt.Fprintln(w, "meshd: open mesh (--open): no mesh secret")
	case sec.created:
		if sec.file != "" {
			fmt.Fprintf(w, "meshd: made a new private mesh; its secret is in %s\n", sec.file)
		}
		fmt.Fprintf(w, "meshd: join token %s\n", tokenFor(s, sec, n))
		fmt.Fprintln(w, "meshd: another node joins with: meshd --join-token TOKEN (meshctl token prints it again)")
	default:
		fmt.Fprintf(w, "meshd: private mesh (secret in %s); meshctl token prints the join token\n", cmp.Or(sec.file, "memory"))
	}
}
