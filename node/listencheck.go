package node

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// checkListenFree refuses a listen address with a fixed port that another
// process already holds. libp2p's TCP transport binds with SO_REUSEPORT,
// so a second node on the same port would start "fine" and then take a
// share of the connections meant for the first (peers see "peer id
// mismatch"). A plain bind, without SO_REUSEPORT, fails while any socket
// holds the port, so a probe bind tells the two cases apart. Port 0 (the
// OS picks) needs no probe; neither does an address that is not IP.
func checkListenFree(addrs []multiaddr.Multiaddr) error {
	for _, a := range addrs {
		na := socketAddr(a)
		if na == nil {
			continue // not TCP or UDP over IP: libp2p says what it thinks
		}
		if err := probeBind(na); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrAddrInUse, a, err)
		}
	}
	return nil
}

// socketAddr is the TCP or UDP socket address a multiaddr listens on
// (QUIC's is UDP), or nil.
func socketAddr(a multiaddr.Multiaddr) net.Addr {
	ip, err := manet.ToIP(a)
	if err != nil {
		return nil
	}
	if p, err := a.ValueForProtocol(multiaddr.P_TCP); err == nil {
		port, _ := strconv.Atoi(p)
		return &net.TCPAddr{IP: ip, Port: port}
	}
	if p, err := a.ValueForProtocol(multiaddr.P_UDP); err == nil {
		port, _ := strconv.Atoi(p)
		return &net.UDPAddr{IP: ip, Port: port}
	}
	return nil
}

// probeBind binds na's port and lets it go at once. Only "address in use"
// is reported; any other failure (no such interface, say) is left to
// libp2p, which reports it in its own words.
func probeBind(na net.Addr) error {
	var err error
	switch na := na.(type) {
	case *net.TCPAddr:
		if na.Port == 0 {
			return nil
		}
		var l *net.TCPListener
		if l, err = net.ListenTCP("tcp", na); err == nil {
			return l.Close()
		}
	case *net.UDPAddr:
		if na.Port == 0 {
			return nil
		}
		var c *net.UDPConn
		if c, err = net.ListenUDP("udp", na); err == nil {
			return c.Close()
		}
	default:
		return nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return errors.New("the port is in use by another process")
	}
	return nil
}
