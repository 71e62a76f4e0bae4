package sock

import (
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/ioreactor/reactor/internal/lock"
	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/pool"
)

// The Windows half of dial_linux.go: ConnectEx on a bound socket, issued
// from the connection's I/O thread.

type connectOp struct {
	poller.Operation
	c  *Conn
	sa windows.RawSockaddrAny // the address, reachable for the call
	inline
}

// Dial starts a connect to addr. Failures known at once (a bad address,
// no socket, a failed bind) are returned and leave nothing behind;
// otherwise OnOpen follows, or OnClose with a *DialError.
func Dial(env *Env, addr string, h Handler, o DialOptions) (*Conn, error) {
	if err := checkNotUnix(addr); err != nil {
		return nil, err
	}
	a, h, s, err := dialSocket(env, addr, h, &o)
	if err != nil {
		return nil, err
	}
	// ConnectEx wants a bound socket.
	if err := windows.Bind(s, anySockaddr(a)); err != nil {
		closeFD(env, s)
		env.Counters.DialFailures.Add(1)
		return nil, &DialError{Addr: addr, Err: os.NewSyscallError("bind", err)}
	}
	c := dialConn(env, s, h, &o, addr, a)
	if err := c.register(); err != nil {
		closeFD(env, s)
		return nil, &DialError{Addr: addr, Err: err}
	}
	putSockaddr(&c.os.io.cop.sa, a)
	if o.Timeout > 0 {
		c.loop.ArmTimer(&c.extra().connectTimer, o.Timeout)
	}
	// Issued from the I/O thread, never from the caller's: I/O issued by
	// a thread that later blocks has been seen to complete late.
	c.life.acquire() // the task's reference, handed to the operation
	c.loop.Post(connectIssue{c})
	return c, nil
}

type connectIssue struct{ c *Conn }

func (t connectIssue) RunTask(*pool.Loop) { t.c.issueConnect() }

// issueConnect runs on the loop with a reference that the operation takes
// over.
func (c *Conn) issueConnect() {
	op := &c.os.io.cop
	c.rmu.Lock() // orders the issue against cancelOps, like a receive
	if c.life.closed() {
		c.rmu.Unlock()
		c.decref()
		return
	}
	fn, err := connectEx(c.fd, int(op.sa.Addr.Family))
	if err != nil {
		c.rmu.Unlock()
		c.decref()
		c.dialFailed(err)
		return
	}
	op.Arm()
	c.os.io.connecting = true
	// unsafe: op.sa and op.Overlapped live in the connection's connIO,
	// reachable until the packet is handled; the call reads the address
	// before it returns.
	r, _, e := syscall.SyscallN(fn, uintptr(c.fd), uintptr(unsafe.Pointer(&op.sa)), uintptr(sockaddrLen(&op.sa)), 0, 0, 0, uintptr(unsafe.Pointer(&op.Overlapped)))
	c.rmu.Unlock()
	err = nil
	if r == 0 { // ConnectEx returns FALSE on failure and when pending
		err = e
		if e == 0 {
			err = windows.ERROR_GEN_FAILURE
		}
	}
	c.settleIssue(&op.Operation, &op.inline, op, 0, err)
}

// RunTask implements pool.Task for a connect that completed at once.
func (op *connectOp) RunTask(*pool.Loop) { op.c.connectDone(op.errno) }

// connectDone handles the connect's completion and drops its reference.
func (c *Conn) connectDone(errno uint32) {
	defer c.decref()
	c.rmu.Lock()
	c.os.io.connecting = false
	c.rmu.Unlock()
	if errno != 0 {
		c.dialFailed(os.NewSyscallError("ConnectEx", windows.Errno(errno)))
		return
	}
	// Makes getpeername, shutdown and the like work on the socket (Wine
	// ignores it; Windows needs it).
	if err := windows.Setsockopt(c.fd, windows.SOL_SOCKET, windows.SO_UPDATE_CONNECT_CONTEXT, nil, 0); err != nil {
		c.dialFailed(os.NewSyscallError("setsockopt", err))
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
	}
	c.open()
}

// connectEx returns ConnectEx's address for a family, fetched once per
// family on a real socket of the engine's (not a throwaway one: the
// pointer belongs to the socket's provider).
func connectEx(s windows.Handle, family int) (uintptr, error) {
	connectExMu.Lock()
	defer connectExMu.Unlock()
	if fn := connectExFns[family]; fn != 0 {
		return fn, nil
	}
	var fn uintptr
	var n uint32
	// unsafe: the GUID and fn are passed by pointer for the call.
	err := windows.WSAIoctl(s, windows.SIO_GET_EXTENSION_FUNCTION_POINTER,
		(*byte)(unsafe.Pointer(&windows.WSAID_CONNECTEX)), uint32(unsafe.Sizeof(windows.WSAID_CONNECTEX)),
		(*byte)(unsafe.Pointer(&fn)), uint32(unsafe.Sizeof(fn)), &n, nil, 0)
	if err != nil {
		return 0, os.NewSyscallError("WSAIoctl", err)
	}
	connectExFns[family] = fn
	return fn, nil
}

var (
	connectExMu  lock.Mutex[connectExFnsMu]
	connectExFns = map[int]uintptr{}
)

// connectExFnsMu is the lock class of connectExMu (internal/lock).
type connectExFnsMu struct{}

// putSockaddr writes a into rsa in Winsock's layout (port in network byte
// order).
func putSockaddr(rsa *windows.RawSockaddrAny, a netip.AddrPort) {
	if a.Addr().Is4() {
		sa := (*windows.RawSockaddrInet4)(unsafe.Pointer(rsa)) // an IPv4 address fits the any-buffer
		sa.Family = windows.AF_INET
		sa.Addr = a.Addr().As4()
		p := (*[2]byte)(unsafe.Pointer(&sa.Port)) // a uint16 field is two bytes; these are in network order
		p[0], p[1] = byte(a.Port()>>8), byte(a.Port())
		return
	}
	sa := (*windows.RawSockaddrInet6)(unsafe.Pointer(rsa)) // so does an IPv6 one
	sa.Family = windows.AF_INET6
	sa.Addr = a.Addr().As16()
	p := (*[2]byte)(unsafe.Pointer(&sa.Port)) // a uint16 field is two bytes; these are in network order
	p[0], p[1] = byte(a.Port()>>8), byte(a.Port())
}

func sockaddrLen(rsa *windows.RawSockaddrAny) int32 {
	if rsa.Addr.Family == windows.AF_INET {
		return int32(unsafe.Sizeof(windows.RawSockaddrInet4{}))
	}
	return int32(unsafe.Sizeof(windows.RawSockaddrInet6{}))
}
