package sock

import (
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// The Windows half of sockaddr_linux.go: addresses and socket creation on
// Winsock.

func family(a netip.AddrPort) int {
	if a.Addr().Is4() {
		return windows.AF_INET
	}
	return windows.AF_INET6
}

func toSockaddr(a netip.AddrPort) windows.Sockaddr {
	if a.Addr().Is4() {
		return &windows.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
	}
	return &windows.SockaddrInet6{Port: int(a.Port()), Addr: a.Addr().As16()}
}

// anySockaddr is the wildcard address of a's family, port 0: ConnectEx
// needs a bound socket.
func anySockaddr(a netip.AddrPort) windows.Sockaddr {
	if a.Addr().Is4() {
		return &windows.SockaddrInet4{}
	}
	return &windows.SockaddrInet6{}
}

func fromSockaddr(sa windows.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *windows.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *windows.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// newSocket makes an overlapped, non-inheritable TCP socket for a's family.
func newSocket(a netip.AddrPort) (windows.Handle, error) {
	s, err := windows.WSASocket(int32(family(a)), windows.SOCK_STREAM, windows.IPPROTO_TCP, nil, 0,
		windows.WSA_FLAG_OVERLAPPED|windows.WSA_FLAG_NO_HANDLE_INHERIT)
	if err != nil {
		return windows.InvalidHandle, os.NewSyscallError("WSASocket", err)
	}
	return s, nil
}

func localAddr(s windows.Handle) netip.AddrPort {
	sa, err := windows.Getsockname(s)
	if err != nil {
		return netip.AddrPort{}
	}
	return fromSockaddr(sa)
}

func setNoDelay(s windows.Handle) error {
	if err := windows.SetsockoptInt(s, windows.IPPROTO_TCP, windows.TCP_NODELAY, 1); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	return nil
}

// setKeepAlive turns keep-alive probes on with k's timing: SO_KEEPALIVE,
// then TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT in seconds (Windows 10
// 1709 and later). Where those are refused, SIO_KEEPALIVE_VALS sets the
// idle time and interval (in milliseconds) and Windows keeps its own
// count of 10.
func setKeepAlive(s windows.Handle, k keepAliveSecs) error {
	if err := windows.SetsockoptInt(s, windows.SOL_SOCKET, windows.SO_KEEPALIVE, 1); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	var err error
	for _, o := range [...]struct{ opt, v int }{
		{windows.TCP_KEEPIDLE, k.idle},
		{windows.TCP_KEEPINTVL, k.intvl},
		{windows.TCP_KEEPCNT, k.cn},
	} {
		if err = windows.SetsockoptInt(s, windows.IPPROTO_TCP, o.opt, o.v); err != nil {
			break
		}
	}
	if err == nil {
		return nil
	}
	vals := windows.TCPKeepalive{OnOff: 1, Time: uint32(k.idle) * 1000, Interval: uint32(k.intvl) * 1000}
	var n uint32
	// unsafe: the input is vals, passed by pointer for the call and read
	// during it.
	if err := windows.WSAIoctl(s, windows.SIO_KEEPALIVE_VALS, (*byte)(unsafe.Pointer(&vals)), uint32(unsafe.Sizeof(vals)), nil, 0, &n, nil, 0); err != nil {
		return os.NewSyscallError("WSAIoctl", err)
	}
	return nil
}

// setUserTimeout sets TCP_MAXRT: how long, in whole seconds (rounded up),
// retransmissions go on before the connection is dropped.
func setUserTimeout(s windows.Handle, d time.Duration) error {
	secs := int((d + time.Second - 1) / time.Second)
	if err := windows.SetsockoptInt(s, windows.IPPROTO_TCP, windows.TCP_MAXRT, secs); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	return nil
}

// rawSockaddr is Winsock's socket-address buffer.
type rawSockaddr = windows.RawSockaddrAny

// rawToAddrPort reads an IPv4 or IPv6 socket address (port in network
// byte order, as Winsock writes it).
func rawToAddrPort(rsa *windows.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case windows.AF_INET:
		sa := (*windows.RawSockaddrInet4)(unsafe.Pointer(rsa)) // the family says this is its layout
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))              // a uint16 field is two bytes; these are in network order
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	case windows.AF_INET6:
		sa := (*windows.RawSockaddrInet6)(unsafe.Pointer(rsa)) // the family says this is its layout
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))              // a uint16 field is two bytes; these are in network order
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// closeFD closes a socket the engine opened and counts it.
func closeFD(env *Env, s windows.Handle) {
	if err := windows.Closesocket(s); err != nil {
		env.Counters.CloseErrors.Add(1)
	}
	env.Counters.FDs.Add(-1)
}

// setBufferSizes sets SO_SNDBUF and SO_RCVBUF where n > 0.
func setBufferSizes(fd windows.Handle, snd, rcv int) error {
	if snd > 0 {
		if err := windows.SetsockoptInt(fd, windows.SOL_SOCKET, windows.SO_SNDBUF, snd); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	if rcv > 0 {
		if err := windows.SetsockoptInt(fd, windows.SOL_SOCKET, windows.SO_RCVBUF, rcv); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}
