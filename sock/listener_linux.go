package sock

import (
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/pool"
)

// Listen binds addr ("host:port", or "unix:PATH" for a Unix-domain
// socket) and starts accepting on a loop of env's group. Every accepted
// connection gets h.
func Listen(env *Env, addr string, h Handler, o ListenOptions) (*Listener, error) {
	path, isUnix, err := unixPath(addr)
	if err != nil {
		return nil, err
	}
	var a netip.AddrPort
	if !isUnix {
		if a, err = ParseAddr(addr); err != nil {
			return nil, err
		}
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	if err := o.checkUnixMode(isUnix, path); err != nil {
		return nil, err
	}
	ln := newListener(env, h, o.ConnOptions)
	if isUnix {
		err = ln.bindUnix(path, o)
	} else {
		err = ln.bindTCP(a, o)
	}
	if err != nil {
		return nil, err
	}
	if err := ln.start(); err != nil {
		return nil, err
	}
	return ln, nil
}

// start puts a bound, listening socket on a loop and begins accepting;
// on failure the descriptor is closed and the listener's file removed.
func (ln *Listener) start() error {
	ln.life.init()
	ln.loop = ln.env.Group.Pick()
	if err := registerFD(ln.env, ln.loop, &ln.reg, ln, ln.fd, poller.Readable|poller.EdgeTriggered); err != nil {
		ln.removeFile()
		return err
	}
	// Connections may already wait in the queue; the edge for them may
	// have passed before the registration.
	ln.loop.Post(ln)
	return nil
}

// bindTCP makes the listener's TCP socket, bound to a and listening; on
// failure nothing is left open.
func (ln *Listener) bindTCP(a netip.AddrPort, o ListenOptions) error {
	fd, err := newSocket(a)
	if err != nil {
		return err
	}
	ln.env.Counters.FDs.Add(1)
	ln.fd = fd
	// Linux copies a listener's keep-alive and user timeout to every
	// socket it accepts (sk_clone), so they are set here once instead of
	// per accept (TestKeepAliveReachesTheSocket).
	ln.perAccept = ln.tcp.apply(fd)
	if err := ln.bind(toSockaddr(a), o); err != nil {
		closeFD(ln.env, fd)
		return err
	}
	ln.addr = localAddr(fd)
	return nil
}

func (ln *Listener) bind(sa unix.Sockaddr, o ListenOptions) error {
	if err := unix.SetsockoptInt(ln.fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	if o.ReusePort {
		if err := unix.SetsockoptInt(ln.fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	if err := unix.Bind(ln.fd, sa); err != nil {
		return os.NewSyscallError("bind", err)
	}
	return ln.listen(o)
}

// acceptTimeout bounds an accept that meets a socket another process has
// just put in blocking mode (keepNonblocking): SO_RCVTIMEO, which only a
// blocking accept heeds, on every listener the engine serves.
const acceptTimeout = 10 * time.Millisecond

// setAcceptTimeout gives fd's socket the receive timeout acceptTimeout.
func setAcceptTimeout(fd int) error {
	tv := unix.NsecToTimeval(acceptTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	return nil
}

// listen starts the kernel's accept queue.
func (ln *Listener) listen(o ListenOptions) error {
	if err := setAcceptTimeout(ln.fd); err != nil {
		return err
	}
	backlog := o.Backlog
	if backlog <= 0 {
		backlog = 4096
	}
	if err := unix.Listen(ln.fd, backlog); err != nil {
		return os.NewSyscallError("listen", err)
	}
	return nil
}

// acceptOne accepts one connection and hands it to its loop.
func (ln *Listener) acceptOne() acceptResult {
	ln.keepNonblocking()
	nfd, remote, err := ln.accept4()
	switch err {
	case nil:
	case unix.EAGAIN:
		return acceptDrained
	case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
		return acceptPause
	default:
		// ECONNABORTED, EPROTO, EPERM (a firewall), EINTR: that client's
		// trouble, not the listener's.
		return acceptTaken
	}
	ln.backoff = 0
	env := ln.env
	env.Counters.FDs.Add(1)
	env.Counters.Accepts.Add(1)
	if env.NoDelay && ln.path == "" {
		setNoDelay(nfd) // best effort: a failure costs latency, not data
	}
	ln.perAccept.set(env, nfd) // usually nothing: see Listener.perAccept
	c := ln.accepted(nfd)
	c.remote = remote
	c.state = stateOpen
	if err := c.register(); err != nil {
		closeFD(env, nfd)
		return acceptTaken
	}
	c.open()
	return acceptTaken
}

func (ln *Listener) closeDescriptor() { closeRegistered(ln.env, ln.loop, &ln.reg, ln.fd) }

// accept4 accepts one connection into the listener's own address buffer
// (guarded by ln.mu), so an accept allocates nothing but the connection:
// unix.Accept4 allocates a raw and a parsed address per call, garbage
// that shows as RSS while thousands of connections arrive.
func (ln *Listener) accept4() (int, netip.AddrPort, error) {
	ln.rsaLen = unix.SizeofSockaddrAny
	ln.env.Counters.AcceptCalls.Add(1)
	// The buffer and its length live in the Listener, reachable for the
	// call; converting their addresses in the call expression keeps them
	// alive and unmoved.
	r, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(ln.fd), uintptr(unsafe.Pointer(&ln.rsa)),
		uintptr(unsafe.Pointer(&ln.rsaLen)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, netip.AddrPort{}, e
	}
	return int(r), rawToAddrPort(&ln.rsa), nil
}

// rawToAddrPort reads an IPv4 or IPv6 socket address (port in network
// byte order, as the kernel writes it).
func rawToAddrPort(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa)) // the family says this is its layout
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))           // a uint16 field is two bytes; these are in network order
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa)) // the family says this is its layout
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))           // a uint16 field is two bytes; these are in network order
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// RunTask implements pool.Task: accept what an earlier burst left.
func (ln *Listener) RunTask(*pool.Loop) { ln.acceptSome() }

// HandleEvent implements pool.Handler.
func (ln *Listener) HandleEvent(*pool.Loop, *poller.Event) { ln.acceptSome() }

// listenerOS on Linux: accept4 needs no state beyond rsa; a Unix-domain
// listener remembers which file its bind made (removeFile).
type listenerOS struct{ dev, ino uint64 }

// cancelPending has nothing to do on Linux: no accept is in flight.
func (ln *Listener) cancelPending() {}

func (ln *Listener) acceptSome() {
	if !ln.life.incref() {
		return
	}
	defer ln.decref()
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if ln.paused {
		return
	}
	for i := 0; i < acceptBurst; i++ {
		switch ln.acceptOne() {
		case acceptDrained:
			return
		case acceptPause:
			ln.env.Counters.AcceptBackoff.Add(1)
			ln.backoff = min(max(2*ln.backoff, acceptBackoffMin), acceptBackoffMax)
			ln.paused = true
			ln.loop.ArmTimer(&ln.timer, ln.backoff)
			return
		}
	}
	ln.loop.Post(ln)
}

// keepNonblocking puts the listening socket's open file back in
// non-blocking mode if another holder of it took that away: os/exec does
// when it passes a file from Go's net to a child (File.Fd sets blocking
// mode). accept4 on a blocking socket would hold the I/O thread, and every
// connection on it, until a client came. It runs before every accept4, so
// only a change in the instant between the two can still make one accept
// block, and the receive timeout every listener has bounds that one
// (docs/handoff.md says where it does not: MPTCP). One fcntl per accept,
// and only on a socket whose open file has other holders (ln.shared): the
// engine's own, never lent, has none that could change it.
func (ln *Listener) keepNonblocking() {
	if !ln.shared.Load() {
		return
	}
	fl, err := unix.FcntlInt(uintptr(ln.fd), unix.F_GETFL, 0)
	if err != nil || fl&unix.O_NONBLOCK != 0 {
		return
	}
	if _, err := unix.FcntlInt(uintptr(ln.fd), unix.F_SETFL, fl|unix.O_NONBLOCK); err == nil {
		ln.env.Counters.AcceptModeRestored.Add(1)
	}
}

type acceptResult uint8

const (
	acceptTaken   acceptResult = iota // a connection, or a failure of that one client: go on
	acceptDrained                     // the queue is empty: wait for the next edge
	acceptPause                       // out of descriptors or memory: back off
)
