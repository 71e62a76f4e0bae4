package sock

import (
	"os"

	"golang.org/x/sys/windows"

	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/pool"
)

// The Windows half of conn_linux.go. On IOCP a connection is always in
// completion mode (iocp_windows.go holds the operations); the readiness
// path of epoll has no counterpart.

type sysfd = windows.Handle

type iovecs = []windows.WSABuf

// msghdr is unused on Windows: WSASend takes the WSABUF array itself.
type msghdr = struct{}

// iovMax bounds the WSABUFs one WSASend gathers. Winsock has no IOV_MAX;
// the bound keeps one send's array, and the time the kernel holds it, in
// proportion.
const iovMax = 1024

// completionOnly: on a completion port every connection is in completion
// mode.
const completionOnly = true

// connOS holds the connection's overlapped operations, made when the
// connection registers.
type connOS struct{ io *connIO }

// Buffer rings are io_uring's; Windows has none.
type recvRing struct{}

func (e *Env) startRings() error { return ErrNotSupported }
func (e *Env) stopRings()        {}

// RingSpares is 0: no rings, so no spares.
func (e *Env) RingSpares() int64 { return 0 }

// recycleOwnedLocked has no ring to recycle into: the write's buffer is
// released with it.
func (c *Conn) recycleOwnedLocked(*writeReq) {}

// performReads belongs to epoll's readiness path.
func (c *Conn) performReads(edge poller.Flags) {}

// HandleEvent implements pool.Handler: every event on a port is a
// completion, and its operation holds a reference of its own.
func (c *Conn) HandleEvent(l *pool.Loop, ev *poller.Event) {
	if ev.Flags&poller.Done != 0 {
		c.handleCompletion(ev)
	}
}

// readIssuedLocked runs, under rmu, after Read stamped a new read.
func (c *Conn) readIssuedLocked() { c.issueRecvLocked() }

// enqueueLocked accepts req, which is stamped: it joins the queue, and a
// send starts unless one is in flight.
func (c *Conn) enqueueLocked(req *writeReq) { c.enqueueOpLocked(req) }

func (c *Conn) shutdownWriteLocked() error {
	if err := windows.Shutdown(c.fd, windows.SHUT_WR); err != nil {
		return os.NewSyscallError("shutdown", err)
	}
	return nil
}

// closeDescriptor removes the token and closes the socket: with
// SO_LINGER 0 when abortive, so the peer gets a reset. No operation is in
// flight any more (each held a reference), but CancelIoEx first costs
// nothing and is what Wine needs before closesocket.
func (c *Conn) closeDescriptor(abortive bool) {
	c.loop.Table().Remove(&c.reg)
	c.loop.AddLoad(-1)
	if abortive {
		if err := windows.SetsockoptLinger(c.fd, windows.SOL_SOCKET, windows.SO_LINGER, &windows.Linger{Onoff: 1, Linger: 0}); err != nil {
			c.env.Counters.CloseErrors.Add(1)
		}
	}
	windows.CancelIoEx(c.fd, nil)
	closeFD(c.env, c.fd)
}

// register publishes c in the token table, associates its socket with the
// port under that token, turns skip-on-success on if the engine chose it
// (recording what the system answered for this socket) and makes its
// operations.
func (c *Conn) register() error {
	tok := c.loop.Table().Insert(&c.reg, c)
	if err := c.loop.Poller().Add(c.fd, tok, 0); err != nil {
		c.loop.Table().Remove(&c.reg)
		return err
	}
	io := newConnIO(c)
	if c.env.skip.Skip {
		io.skip = setSkip(c.fd)
		if io.skip {
			c.env.Counters.SkipSockets.Add(1)
		}
	}
	c.os.io = io
	c.loop.AddLoad(1)
	return nil
}
