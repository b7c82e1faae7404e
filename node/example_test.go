package node_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/gossipmesh/gossipmesh/node"
	"github.com/multiformats/go-multiaddr"
)

// Two nodes in one process: a write on one is read on the other.
func Example() {
	ctx := context.Background()
	cfg := node.DefaultConfig()
	cfg.Memory = true // use DataDir (pebble) for a real device
	cfg.MDNS = false
	cfg.ListenAddrs = []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/0")}

	a, err := node.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	cfg.Bootstrap = a.Addrs() // the second node joins through the first
	b, err := node.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	changes, err := b.Watch(ctx, []byte("greeting"))
	if err != nil {
		log.Fatal(err)
	}
	if err := a.Put(ctx, []byte("greeting"), []byte("hello, mesh")); err != nil {
		log.Fatal(err)
	}
	select {
	case ev := <-changes: // pushed by gossip, or pulled by anti-entropy
		v, _ := b.Get(ctx, ev.Key)
		fmt.Println(string(v))
	case <-time.After(10 * time.Second):
		fmt.Println("not replicated")
	}
	// Output: hello, mesh
}
