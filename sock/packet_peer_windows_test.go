package sock_test

import (
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/windows"
)

// udpTestPeer is the tests' side of a datagram exchange: a blocking
// Winsock socket, not the engine. (Go's net package cannot make a UDP
// socket under Wine: its SIO_UDP_CONNRESET call fails there.)
type udpTestPeer struct {
	s    windows.Handle
	self netip.AddrPort
}

func udpPeer(t *testing.T, host string) *udpTestPeer {
	t.Helper()
	ip := netip.MustParseAddr(host)
	var af int
	var sa windows.Sockaddr
	if ip.Is4() {
		af, sa = windows.AF_INET, &windows.SockaddrInet4{Addr: ip.As4()}
	} else {
		af, sa = windows.AF_INET6, &windows.SockaddrInet6{Addr: ip.As16()}
	}
	s, err := windows.Socket(af, windows.SOCK_DGRAM, windows.IPPROTO_UDP)
	if err != nil {
		t.Fatal(os.NewSyscallError("socket", err))
	}
	p := &udpTestPeer{s: s}
	t.Cleanup(p.close)
	if err := windows.Bind(s, sa); err != nil {
		t.Fatal(os.NewSyscallError("bind", err))
	}
	if err := windows.SetsockoptInt(s, windows.SOL_SOCKET, windows.SO_RCVTIMEO, 10000); err != nil {
		t.Fatal(os.NewSyscallError("setsockopt", err))
	}
	self, err := windows.Getsockname(s)
	if err != nil {
		t.Fatal(err)
	}
	p.self = addrOf(self)
	return p
}

func addrOf(sa windows.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *windows.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *windows.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

func (p *udpTestPeer) send(b []byte, to netip.AddrPort) error {
	var sa windows.Sockaddr
	if to.Addr().Is4() {
		sa = &windows.SockaddrInet4{Port: int(to.Port()), Addr: to.Addr().As4()}
	} else {
		sa = &windows.SockaddrInet6{Port: int(to.Port()), Addr: to.Addr().As16()}
	}
	if len(b) == 0 {
		b = make([]byte, 0, 1) // sendto needs an address even for nothing
	}
	return windows.Sendto(p.s, b, 0, sa)
}

// recv waits up to 10 s for a datagram.
func (p *udpTestPeer) recv(buf []byte) (int, netip.AddrPort, error) {
	n, from, err := windows.Recvfrom(p.s, buf, 0)
	if err != nil {
		return 0, netip.AddrPort{}, os.NewSyscallError("recvfrom", err)
	}
	return n, addrOf(from), nil
}

func (p *udpTestPeer) addr() netip.AddrPort { return p.self }

func (p *udpTestPeer) setReadBuffer(n int) {
	windows.SetsockoptInt(p.s, windows.SOL_SOCKET, windows.SO_RCVBUF, n)
}

// close closes the socket once: a handle closed twice may by then name
// another socket.
func (p *udpTestPeer) close() {
	if p.s != windows.InvalidHandle {
		windows.Closesocket(p.s)
		p.s = windows.InvalidHandle
	}
}
