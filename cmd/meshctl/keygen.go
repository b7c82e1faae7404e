package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"

	"github.com/spf13/cobra"
)

// keygenCmd prints new key files. The formats are simple enough to write
// here, which keeps libp2p out of the meshctl binary; a test checks that
// the node reads what this prints.
func (a *app) keygenCmd() *cobra.Command {
	return a.cmd("keygen [swarm|store]",
		"Print a new swarm key (private mesh: meshd --swarm-key) or store key (meshd --encryption-key-file)",
		rangeArgs(0, 1), a.keygen)
}

func (a *app) keygen(_ context.Context, args []string) error {
	kind := "swarm"
	if len(args) == 1 {
		kind = args[0]
	}
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return err
	}
	var text string
	switch kind {
	case "swarm":
		// The libp2p pnet "/key/swarm/psk/1.0.0/" file format.
		text = "/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(k[:]) + "\n"
	case "store":
		text = hex.EncodeToString(k[:]) + "\n"
	default:
		return usageErrorf("keygen: unknown key kind %q (swarm or store)", kind)
	}
	if a.jsonOut {
		return a.printJSON(map[string]string{"kind": kind, "key_hex": hex.EncodeToString(k[:]), "file": text})
	}
	_, err := io.WriteString(a.stdout, text)
	return err
}
