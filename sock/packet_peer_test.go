//go:build !windows

package sock_test

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// udpTestPeer is the tests' side of a datagram exchange: Go's net package,
// not the engine.
type udpTestPeer struct{ c *net.UDPConn }

func udpPeer(t *testing.T, host string) *udpTestPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(host), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpTestPeer{c}
}

func (p *udpTestPeer) send(b []byte, to netip.AddrPort) error {
	_, err := p.c.WriteToUDPAddrPort(b, to)
	return err
}

// recv waits up to 10 s for a datagram.
func (p *udpTestPeer) recv(buf []byte) (int, netip.AddrPort, error) {
	p.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, err := p.c.ReadFromUDPAddrPort(buf)
	return n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), err
}

func (p *udpTestPeer) addr() netip.AddrPort { return p.c.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *udpTestPeer) setReadBuffer(n int) { p.c.SetReadBuffer(n) }

func (p *udpTestPeer) close() { p.c.Close() }
