package sock

import (
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/pool"
)

// Dial starts a non-blocking connect to addr. Failures known at once (a
// bad address, no descriptor, a refusal the kernel reports immediately)
// are returned and leave nothing behind. Otherwise the connection's
// OnOpen follows when it is established, or its OnClose with a
// *DialError when it fails or times out; the socket is closed then.
//
// addr is "host:port", or "unix:PATH" for a Unix-domain socket.
func Dial(env *Env, addr string, h Handler, o DialOptions) (*Conn, error) {
	path, isUnix, err := unixPath(addr)
	if err != nil {
		return nil, err
	}
	if isUnix {
		return dialUnix(env, addr, path, h, o)
	}
	a, h, fd, err := dialSocket(env, addr, h, &o)
	if err != nil {
		return nil, err
	}
	err = unix.Connect(fd, toSockaddr(a))
	if err != nil && err != unix.EINPROGRESS {
		closeFD(env, fd)
		env.Counters.DialFailures.Add(1)
		return nil, &DialError{Addr: addr, Err: os.NewSyscallError("connect", err)}
	}
	return connecting(env, fd, h, &o, addr, a)
}

// connecting makes the connection of a socket whose connect has started
// (or, for a Unix-domain socket, succeeded): its first writable event
// opens it, or fails it with the connect's error.
func connecting(env *Env, fd int, h Handler, o *DialOptions, addr string, a netip.AddrPort) (*Conn, error) {
	c := dialConn(env, fd, h, o, addr, a)
	if err := c.register(); err != nil {
		closeFD(env, fd)
		return nil, &DialError{Addr: addr, Err: err}
	}
	// The connect may already have failed and the connection been torn
	// down on its loop (a refusal comes at once on loopback): a timer
	// armed after that teardown would hold the dead connection until it
	// fired. Holding a reference keeps teardown, and its StopTimer, after
	// the arming.
	if o.Timeout > 0 && c.life.incref() {
		c.loop.ArmTimer(&c.extra().connectTimer, o.Timeout)
		c.decref()
	}
	return c, nil
}

// finishConnect handles the first event of a connecting socket.
func (c *Conn) finishConnect(f poller.Flags) {
	if f&(poller.Out|poller.Err|poller.Hup) == 0 {
		return
	}
	if err := soError(c.fd, "connect"); err != nil {
		c.dialFailed(err)
		return
	}
	if c.selfConnected() {
		c.dialFailed(ErrSelfConnect)
		return
	}
	if !c.dialing.CompareAndSwap(true, false) {
		return
	}
	if x := c.x.Load(); x != nil {
		c.loop.StopTimer(&x.connectTimer)
		if x.polled {
			// Completion mode from here on: readiness is no longer needed.
			if err := c.loop.Poller().Remove(c.fd); err != nil {
				c.env.Counters.CloseErrors.Add(1)
			}
			x.polled = false
		}
	}
	c.open()
}

// closeFD closes a descriptor the engine opened and counts it.
func closeFD(env *Env, fd int) {
	if err := unix.Close(fd); err != nil {
		env.Counters.CloseErrors.Add(1)
	}
	env.Counters.FDs.Add(-1)
}

// registerFD puts fd on l under reg for h with the given interest; on
// failure it closes fd, so nothing is left.
func registerFD(env *Env, l *pool.Loop, reg *pool.Registration, h pool.Handler, fd int, in poller.Interest) error {
	tok := l.Table().Insert(reg, h)
	if err := l.Poller().Add(fd, tok, in); err != nil {
		l.Table().Remove(reg)
		closeFD(env, fd)
		return err
	}
	return nil
}

// closeRegistered closes a descriptor registered on l under reg: out of
// the poller (which on io_uring also drops the poll request's hold on the
// socket), out of the table, then closed.
func closeRegistered(env *Env, l *pool.Loop, reg *pool.Registration, fd int) {
	if err := l.Poller().Remove(fd); err != nil {
		env.Counters.CloseErrors.Add(1)
	}
	l.Table().Remove(reg)
	closeFD(env, fd)
}
