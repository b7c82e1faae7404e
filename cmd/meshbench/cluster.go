package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/multiformats/go-multiaddr"

	"github.com/gossipmesh/gossipmesh/node"
)

// cluster is a set of real nodes on loopback TCP, each on its own pebble
// directory, for the network benchmarks.
type cluster struct {
	nodes []*node.Node
	dirs  []string
}

func benchConfig(dir string) node.Config {
	cfg := node.DefaultConfig()
	cfg.DataDir = dir
	cfg.MDNS = false
	cfg.ListenAddrs = []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/0")}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

func (c *cluster) add(ctx context.Context, edit func(*node.Config)) (*node.Node, error) {
	dir, err := os.MkdirTemp("", "meshbench-node-")
	if err != nil {
		return nil, err
	}
	c.dirs = append(c.dirs, dir)
	cfg := benchConfig(dir)
	if edit != nil {
		edit(&cfg)
	}
	n, err := node.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c.nodes = append(c.nodes, n)
	return n, nil
}

// startCluster starts count nodes and connects each to degree random others.
func startCluster(ctx context.Context, count, degree int, rng *rand.Rand) (*cluster, error) {
	c := &cluster{}
	for range count {
		if _, err := c.add(ctx, nil); err != nil {
			c.close()
			return nil, err
		}
	}
	for i, n := range c.nodes {
		for _, j := range rng.Perm(count)[:min(degree, count)] {
			if j == i {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := n.Connect(cctx, c.nodes[j].Addrs()[0])
			cancel()
			if err != nil {
				c.close()
				return nil, fmt.Errorf("connect: %w", err)
			}
		}
	}
	return c, nil
}

func (c *cluster) close() {
	for _, n := range c.nodes {
		n.Close()
	}
	for _, d := range c.dirs {
		os.RemoveAll(d)
	}
}
