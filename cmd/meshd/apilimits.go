package main

import (
	"net"
	"time"

	"golang.org/x/net/netutil"
	"golang.org/x/sys/unix"
)

// HTTP API server limits. Go raises the soft descriptor limit to the hard
// one at start; the API may hold a quarter of it (libp2p, pebble and the
// node need the rest), between 64 and 4096 connections. Beyond that
// accepting waits, and the kernel's backlog holds new clients, so a flood
// of slow clients cannot take the descriptors the node needs.
const (
	minAPIConns = 64
	maxAPIConns = 4096
	// apiIdleTimeout closes keep-alive connections left idle.
	apiIdleTimeout = 2 * time.Minute
	// apiHeaderTimeout bounds the time to send the request headers.
	apiHeaderTimeout = 10 * time.Second
)

// apiConnLimit is the connection cap for the descriptor limit in force.
func apiConnLimit() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return minAPIConns
	}
	return int(min(max(lim.Cur/4, minAPIConns), maxAPIConns))
}

// limitAPIListener caps the connections the API serves at once.
func limitAPIListener(ln net.Listener) net.Listener {
	return netutil.LimitListener(ln, apiConnLimit())
}
