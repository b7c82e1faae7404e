package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/multiformats/go-multiaddr"
)

// A join token is everything a new node needs to join a private mesh in
// one argument: the mesh's identity (name, partition count, replication
// factor), its secret (the swarm key) and where to find a member. It is
// tokenPrefix followed by the unpadded URL-safe base64 of a JSON
// joinToken, so it survives a shell, a URL and a YAML file unquoted.
const tokenPrefix = "gmjt1_"

// tokenVersion is joinToken.V for this format; a token of another version
// is refused rather than half understood.
const tokenVersion = 1

// errToken marks a join token that does not decode.
var errToken = errors.New("meshd: bad join token")

// joinToken is what a token carries.
type joinToken struct {
	V           int      `json:"v"`
	Mesh        string   `json:"mesh"`
	Partitions  int      `json:"partitions"`
	Replication int      `json:"replication"`
	Key         string   `json:"key"`   // the 32-byte swarm key, hex
	Addrs       []string `json:"addrs"` // members' multiaddrs, each with /p2p/PEERID
}

func (t joinToken) encode() string {
	b, _ := json.Marshal(t) // strings and ints only: cannot fail
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(s string) (joinToken, error) {
	var t joinToken
	body, ok := strings.CutPrefix(strings.TrimSpace(s), tokenPrefix)
	if !ok {
		return t, fmt.Errorf("%w: it must start with %s (meshctl token prints one)", errToken, tokenPrefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return t, fmt.Errorf("%w: %v (cut short when pasted?)", errToken, err)
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return t, fmt.Errorf("%w: %v", errToken, err)
	}
	if t.V != tokenVersion {
		return t, fmt.Errorf("%w: version %d, this meshd reads version %d", errToken, t.V, tokenVersion)
	}
	if _, err := decodeHexKey(t.Key); err != nil {
		return t, fmt.Errorf("%w: the mesh secret is not %d bytes of hex", errToken, swarmKeyBytes)
	}
	if t.Mesh == "" || t.Partitions < 1 || t.Replication < 0 {
		return t, fmt.Errorf("%w: mesh %q, partitions %d, replication %d", errToken, t.Mesh, t.Partitions, t.Replication)
	}
	if len(t.Addrs) == 0 {
		return t, fmt.Errorf("%w: it names no member to join", errToken)
	}
	for _, a := range t.Addrs {
		ma, err := multiaddr.NewMultiaddr(a)
		if err == nil {
			_, err = ma.ValueForProtocol(multiaddr.P_P2P)
		}
		if err != nil {
			return t, fmt.Errorf("%w: address %q: %v", errToken, a, err)
		}
	}
	return t, nil
}

// decodeHexKey decodes a 32-byte key written in hex.
func decodeHexKey(s string) ([]byte, error) {
	key, err := hex.DecodeString(s)
	if err != nil || len(key) != swarmKeyBytes {
		return nil, errToken
	}
	return key, nil
}

// swarmKeyFile is the libp2p pnet file format of a 32-byte key.
func swarmKeyFile(key []byte) []byte {
	return []byte("/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(key) + "\n")
}

// swarmKeyBytes is the length of a swarm key.
const swarmKeyBytes = 32
