package sock

import (
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/ioreactor/reactor/internal/lock"
	"github.com/ioreactor/reactor/pool"
)

// ListenOptions tunes a listener.
type ListenOptions struct {
	// Backlog is the length of the kernel's accept queue; 0 means 4096
	// (the kernel caps it at net.core.somaxconn).
	Backlog int
	// ReusePort sets SO_REUSEPORT, so several listeners (in this process or
	// others) can share the port and the kernel spreads connections.
	ReusePort bool
	// UnixMode is the permission bits of a Unix-domain listener's socket
	// file (connecting needs write permission). 0 leaves them to the
	// kernel: 0777 less the process's umask. The file never has more bits
	// than UnixMode, not even for an instant after bind; see docs/unix.md.
	// Refused for an abstract name (it has no file, and no permissions)
	// and for TCP.
	UnixMode os.FileMode
	// ConnOptions apply to every accepted connection.
	ConnOptions
}

// checkListen checks a listener's options before anything is bound: a
// TLS certificate that cannot work is refused here, by name.
func (o *ListenOptions) check() error {
	if _, err := o.tcpOptions(); err != nil {
		return err
	}
	if o.TLS != nil {
		return CheckTLSConfig(o.TLS, time.Now(), true)
	}
	return nil
}

// accepted makes the connection for an accepted descriptor.
func (ln *Listener) accepted(fd sysfd) *Conn {
	c := newConn(ln.env, ln.env.Group.Pick(), fd, ln.opts.handler(ln.h, true, ""))
	ln.opts.apply(c)
	return c
}

// Accept back-off when the process or system is out of descriptors or
// memory: the listener stops accepting, retries after the delay, and
// doubles it up to the cap. The listener itself never fails for this: the
// pending connections wait in the kernel's queue.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = 200 * time.Millisecond
	// acceptBurst bounds the accepts done for one event, so a flood of
	// connections cannot starve the loop's other descriptors; the rest are
	// taken in a posted task.
	acceptBurst = 128
)

// Listener accepts stream connections and hands each to a loop chosen by
// the engine's balancer. Its callbacks go to the Handler given to Listen.
type Listener struct {
	reg  pool.Registration
	fd   sysfd
	loop *pool.Loop
	env  *Env
	h    Handler
	life lifetime
	addr netip.AddrPort
	// path is a Unix-domain listener's path; unlink says Close removes
	// the file it made.
	path   string
	unlink atomic.Bool
	// shared says the socket's open file may have other holders (it
	// came from ListenFile, or File or Control lent it): another holder
	// can then make it blocking (keepNonblocking).
	shared atomic.Bool
	done   chan struct{}
	opts   ConnOptions
	tcp    tcpOptions // opts' TCP options, resolved
	// perAccept is what of tcp each accepted socket is given: all of it
	// on Windows; on Linux only what the listening socket refused, since
	// accepted sockets inherit the rest from it (an MPTCP listener, as Go's
	// net makes them, refuses TCP_USER_TIMEOUT, which its accepted sockets
	// take).
	perAccept tcpOptions

	mu      lock.Mutex[listenerMu] // serialises accepting (several threads in shared mode)
	backoff time.Duration
	paused  bool // waiting for the back-off timer
	timer   pool.Timer
	rsa     rawSockaddr // accept's address buffer, guarded by mu
	os      listenerOS  // the platform's accept state (Windows: AcceptEx operations)
	rsaLen  uint32
}

// newListener makes a listener for h, its socket not yet set.
// Its options have passed ListenOptions.check.
func newListener(env *Env, h Handler, opts ConnOptions) *Listener {
	tcp, err := opts.tcpOptions()
	if err != nil {
		panic("sock: listener options not checked: " + err.Error())
	}
	ln := &Listener{env: env, h: h, done: make(chan struct{}), opts: opts, tcp: tcp}
	ln.timer.Init(ln.resume)
	return ln
}

// listenerMu is the lock class of Listener.mu (internal/lock).
type listenerMu struct{}

// Addr is the address the listener is bound to (with the real port when
// 0 was asked for).
func (ln *Listener) Addr() netip.AddrPort { return ln.addr }

// Close stops accepting and closes the listening descriptor on its loop.
// Connections already accepted are not affected. Done is closed once the
// descriptor is closed.
func (ln *Listener) Close() error {
	if !ln.life.markClosed() {
		return ErrClosed
	}
	// The file goes now, not when the loop closes the descriptor: a
	// Listen on the same path right after Close must not lose its new
	// file to this listener's teardown.
	ln.removeFile()
	ln.cancelPending()
	ln.decref()
	return nil
}

// Done is closed when the listener's descriptor has been closed.
func (ln *Listener) Done() <-chan struct{} { return ln.done }

func (ln *Listener) decref() {
	if ln.life.decref() {
		ln.loop.Post(listenerTeardown{ln})
	}
}

// listenerTeardown is the task that closes a listener on its loop.
type listenerTeardown struct{ ln *Listener }

func (t listenerTeardown) RunTask(*pool.Loop) {
	ln := t.ln
	ln.loop.StopTimer(&ln.timer)
	ln.closeDescriptor()
	close(ln.done)
}

// resume runs when the back-off timer fires.
func (ln *Listener) resume() {
	ln.mu.Lock()
	ln.paused = false
	ln.mu.Unlock()
	ln.acceptSome()
}
