package sock

import (
	"net/netip"

	"golang.org/x/sys/windows"

	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/pool"
)

// The Windows half of the connection is the IOCP backend, which is not
// built yet. Until then every entry point refuses with ErrNotSupported, and
// reactor.New refuses before any of these can be reached.

type sysfd = windows.Handle

type iovecs = []windows.WSABuf

type msghdr = struct{}

type recvRing struct{}

func (e *Env) startRings() error { return ErrNotSupported }
func (e *Env) stopRings()        {}
func (c *Conn) cancelOps()       {}

func (c *Conn) readIssuedLocked()              {}
func (c *Conn) performReads(edge poller.Flags) {}
func (c *Conn) shutdownWriteLocked() error     { return ErrNotSupported }
func (c *Conn) closeDescriptor(abortive bool)  {}
func (c *Conn) enqueueLocked(req *writeReq)    { c.completeWriteLocked(req, ErrNotSupported) }
func (ln *Listener) acceptOne() acceptResult   { return acceptDrained }
func (ln *Listener) closeDescriptor()          {}

// Listen is not supported on Windows yet.
func Listen(env *Env, addr string, h Handler, o ListenOptions) (*Listener, error) {
	return nil, ErrNotSupported
}

// Dial is not supported on Windows yet.
func Dial(env *Env, addr string, h Handler, o DialOptions) (*Conn, error) {
	return nil, ErrNotSupported
}

// HandleEvent implements pool.Handler.
func (c *Conn) HandleEvent(l *pool.Loop, ev *poller.Event) {}

func localAddr(fd sysfd) netip.AddrPort { return netip.AddrPort{} }

type rawSockaddr = windows.RawSockaddrAny
