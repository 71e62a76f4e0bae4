package sock

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/pool"
)

// The Windows half of listener_linux.go: several AcceptEx operations stay
// outstanding on the listening socket, each with a socket made for it in
// advance. A completed accept becomes a connection and is posted again.
// A failure that belongs to one client (a reset before the accept
// completed) re-posts the accept; running out of sockets backs off on the
// listener's timer, as accept4's EMFILE does on Linux. The listener never
// fails for either.

// acceptOutstanding is how many AcceptEx operations a listener keeps
// posted.
const acceptOutstanding = 16

// acceptAddrLen is the address room AcceptEx wants per address: the
// largest sockaddr plus 16 bytes.
const acceptAddrLen = uint32(unsafe.Sizeof(windows.RawSockaddrAny{})) + 16

const opAccept0 poller.Op = 32 // opAccept0+i is accept slot i

type listenerOS struct {
	family int
	ops    [acceptOutstanding]acceptOp
}

type acceptOp struct {
	poller.Operation
	busy bool           // under ln.mu
	s    windows.Handle // the socket made for this accept
	buf  [2 * acceptAddrLen]byte
}

// Listen binds addr, listens, associates the socket with the port and has
// the first accepts posted by an I/O thread.
func Listen(env *Env, addr string, h Handler, o ListenOptions) (*Listener, error) {
	if err := checkNotUnix(addr); err != nil {
		return nil, err
	}
	a, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	if err := o.checkUnixMode(false, ""); err != nil {
		return nil, err
	}
	if o.ReusePort {
		return nil, fmt.Errorf("%w: Windows has no SO_REUSEPORT", ErrNotSupported)
	}
	s, err := newSocket(a)
	if err != nil {
		return nil, err
	}
	env.Counters.FDs.Add(1)
	ln := newListener(env, h, o.ConnOptions)
	ln.fd = s
	ln.perAccept = ln.tcp // set on each accepted socket (acceptDone)
	if err := windows.Bind(s, toSockaddr(a)); err != nil {
		closeFD(env, s)
		return nil, os.NewSyscallError("bind", err)
	}
	backlog := o.Backlog
	if backlog <= 0 {
		backlog = windows.SOMAXCONN
	}
	if err := windows.Listen(s, backlog); err != nil {
		closeFD(env, s)
		return nil, os.NewSyscallError("listen", err)
	}
	ln.addr = localAddr(s)
	ln.os.family = family(a)
	for i := range ln.os.ops {
		ln.os.ops[i].Op = opAccept0 + poller.Op(i)
		ln.os.ops[i].s = windows.InvalidHandle
	}
	ln.life.init()
	ln.loop = env.Group.Pick()
	tok := ln.loop.Table().Insert(&ln.reg, ln)
	if err := ln.loop.Poller().Add(s, tok, 0); err != nil {
		ln.loop.Table().Remove(&ln.reg)
		closeFD(env, s)
		return nil, err
	}
	// The first accepts are issued from an I/O thread, never from the
	// caller's (I/O issued by a thread that later blocks has been seen to
	// complete late on Windows 8 / Server 2012).
	ln.loop.Post(ln)
	return ln, nil
}

// RunTask implements pool.Task: post the accepts that are missing.
func (ln *Listener) RunTask(*pool.Loop) { ln.acceptSome() }

// acceptSome posts an AcceptEx on every idle slot.
func (ln *Listener) acceptSome() {
	if !ln.life.incref() {
		return
	}
	defer ln.decref()
	ln.mu.Lock()
	defer ln.mu.Unlock()
	for i := range ln.os.ops {
		if ln.paused || ln.life.closed() {
			return
		}
		if op := &ln.os.ops[i]; !op.busy {
			ln.postAcceptLocked(op)
		}
	}
}

// postAcceptLocked issues one AcceptEx. Called with ln.mu held.
func (ln *Listener) postAcceptLocked(op *acceptOp) {
	var s windows.Handle
	var err error
	if hook := testHookSocket.Load(); hook != nil {
		err = (*hook)()
	}
	if err == nil {
		s, err = windows.WSASocket(int32(ln.os.family), windows.SOCK_STREAM, windows.IPPROTO_TCP, nil, 0,
			windows.WSA_FLAG_OVERLAPPED|windows.WSA_FLAG_NO_HANDLE_INHERIT)
	}
	if err != nil {
		// Out of sockets or memory: back off, never spin, never die.
		ln.env.Counters.AcceptBackoff.Add(1)
		ln.backoff = min(max(2*ln.backoff, acceptBackoffMin), acceptBackoffMax)
		ln.paused = true
		ln.loop.ArmTimer(&ln.timer, ln.backoff)
		return
	}
	ln.env.Counters.FDs.Add(1)
	op.s = s
	op.busy = true
	ln.life.acquire() // the operation's reference
	op.Arm()
	var n uint32
	ln.env.Counters.AcceptCalls.Add(1)
	err = windows.AcceptEx(ln.fd, s, &op.buf[0], 0, acceptAddrLen, acceptAddrLen, &n, &op.Overlapped)
	if err == nil || err == windows.ERROR_IO_PENDING {
		return // the listener has no skip-on-success: a packet comes either way
	}
	// Failed at once: no packet will come.
	if op.Complete() {
		op.busy = false
		op.s = windows.InvalidHandle
		closeFD(ln.env, s)
		ln.life.decref() // cannot be the last: the caller holds one
	}
}

// HandleEvent implements pool.Handler: an accept completed.
func (ln *Listener) HandleEvent(l *pool.Loop, ev *poller.Event) {
	i := int(ev.Op - opAccept0)
	if ev.Flags&poller.Done == 0 || ev.Op < opAccept0 || i >= len(ln.os.ops) {
		return
	}
	ln.acceptDone(&ln.os.ops[i], ev.Err)
}

// acceptDone turns a completed accept into a connection and re-posts it.
// The operation's reference is dropped at the end.
func (ln *Listener) acceptDone(op *acceptOp, errno uint32) {
	defer ln.decref()
	if testHookAcceptDone != nil {
		errno = testHookAcceptDone(errno)
	}
	ln.mu.Lock()
	s := op.s
	op.s = windows.InvalidHandle
	op.busy = false
	closed := ln.life.closed()
	ln.mu.Unlock()
	env := ln.env
	if closed || errno != 0 {
		// Closing completes every accept with 995; a reset client
		// (WSAECONNRESET, ERROR_NETNAME_DELETED) fails only its own.
		closeFD(env, s)
		if !closed {
			ln.acceptSome()
		}
		return
	}
	ln.backoff = 0
	// Makes the accepted socket inherit the listener's properties
	// (getsockname, shutdown); Wine ignores it.
	lfd := ln.fd
	// unsafe: the option value is the listener's handle, passed by
	// pointer for the call and read during it.
	if err := windows.Setsockopt(s, windows.SOL_SOCKET, windows.SO_UPDATE_ACCEPT_CONTEXT, (*byte)(unsafe.Pointer(&lfd)), int32(unsafe.Sizeof(lfd))); err != nil {
		env.Counters.CloseErrors.Add(1)
	}
	var local, remote *windows.RawSockaddrAny
	var llen, rlen int32
	windows.GetAcceptExSockaddrs(&op.buf[0], 0, acceptAddrLen, acceptAddrLen, &local, &llen, &remote, &rlen)
	env.Counters.Accepts.Add(1)
	if env.NoDelay {
		setNoDelay(s) // best effort
	}
	// Per accepted socket: Windows documents no inheritance of these from
	// the listener.
	ln.perAccept.set(env, s)
	c := ln.accepted(s)
	if remote != nil {
		c.remote = rawToAddrPort(remote)
	}
	c.state = stateOpen
	if err := c.register(); err != nil {
		closeFD(env, s)
	} else {
		c.open()
	}
	ln.acceptSome()
}

// testHookAcceptDone, when set by a test, may replace the error an accept
// completed with: Wine cannot make AcceptEx fail for one client.
var testHookAcceptDone func(errno uint32) uint32

// testHookSocket, when set by a test, runs before each accept's WSASocket;
// an error it returns stands for WSASocket's (out of sockets or memory,
// which a test cannot make Windows, or Wine, run out of on its own).
var testHookSocket atomic.Pointer[func() error]

// cancelPending ends the accepts in flight: each completes with 995 and
// drops its reference, so the listener can be torn down. Taking ln.mu
// orders it after any accept being posted.
func (ln *Listener) cancelPending() {
	ln.mu.Lock()
	windows.CancelIoEx(ln.fd, nil)
	ln.mu.Unlock()
}

// closeDescriptor closes the listening socket once nothing is in flight.
func (ln *Listener) closeDescriptor() {
	ln.loop.Table().Remove(&ln.reg)
	closeFD(ln.env, ln.fd)
}
