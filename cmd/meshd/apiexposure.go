package main

import (
	"net"
	"strings"
)

// checkAPIExposure refuses an API reachable from other machines without a
// token: anyone on the network could then read and overwrite the node's
// data. Loopback needs no token (only local users reach it); any other
// address needs --api-token-file, or --api-insecure for a network the
// operator trusts (a private container network, say), which is logged as a
// warning at start.
func checkAPIExposure(s *settings, token string) error {
	if token != "" || s.APIInsecure || isLoopback(s.API) {
		return nil
	}
	return usagef("--api %s is reachable from the network without a token: set --api-token-file, or --api-insecure to allow it", s.API)
}

// isLoopback reports whether host:port binds only the loopback interface.
// An empty host binds every interface.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
