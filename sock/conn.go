package sock

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/ioreactor/reactor/internal/lock"
	"github.com/ioreactor/reactor/pool"
	"github.com/ioreactor/reactor/seq"
)

// connState is where a connection is in its life. It changes only under
// Conn.wmu, which also orders it against writes.
type connState uint8

const (
	// stateConnecting: an outbound connect is in progress; no callback yet.
	stateConnecting connState = iota
	// stateOpen: reads and writes are accepted.
	stateOpen
	// stateClosing: Close was called with writes still queued; no new write
	// is accepted, the queue drains, then the connection closes (or is
	// aborted when the linger timer fires first).
	stateClosing
)

// Work a connection has posted to its loop, as bits in Conn.sched. A bit
// set while a RunTask is already queued rides on that task.
const (
	schedOpen    uint32 = 1 << iota // deliver OnOpen (holds a reference)
	schedRead                       // perform issued reads
	schedDeliver                    // deliver completions
	schedDestroy                    // last reference dropped: tear down
	schedCancel                     // closed: cancel operations in flight (completion mode)
)

// Conn is a stream connection. Its methods are safe for concurrent use.
type Conn struct {
	reg  pool.Registration
	fd   sysfd
	os   connOS // the platform's per-connection state (empty on Linux)
	loop *pool.Loop
	env  *Env
	h    Handler
	life lifetime
	// sched holds the posted work bits; dialing is set while an outbound
	// connect is in progress.
	sched   atomic.Uint32
	dialing atomic.Bool
	ctx     atomic.Pointer[ctxBox]

	remote netip.AddrPort

	x atomic.Pointer[connExtra] // made on first use

	// Read side, guarded by rmu. Reads are stamped at issue; rnext is the
	// stamp of the oldest issued read not yet performed, rwant how many
	// issued reads are not yet performed.
	rmu      lock.Mutex[connRmu]
	rgen     seq.Generator
	rnext    seq.Number
	rwant    int32
	readable bool // the descriptor may have bytes (or EOF) to read
	rhup     bool // the peer shut its side: read on until EOF
	rfull    bool // the last read filled all it was given: offer a chain next
	reading  bool // performReads is looping: a new Read needs no task
	rmulti   bool // the receive in flight is multishot (io_uring)
	// rinflight: a receive is queued on the ring (completion mode).
	rinflight bool
	// onWrite says h is a WriteHandler (asserted again only when a write
	// completion is delivered, to keep the connection small). Set once,
	// before the connection is shared.
	onWrite bool
	onFlow  bool // h is a FlowHandler (set once, like onWrite)
	rout    atomic.Int32

	// Write side, guarded by wmu. wq is the queue of accepted writes not yet
	// wholly taken by the kernel, oldest first; nil while none waits (an
	// emptied queue goes back to a pool, so an idle connection holds none).
	wmu    lock.Mutex[connWmu]
	state  connState
	opened bool // OnOpen was delivered (ConnsOpen counts it)
	// delivering is guarded by dmu (it sits here to fill padding).
	delivering bool
	wgen       seq.Generator
	wq         *writeQueue
	// wqLen counts accepted writes not yet wholly taken: the queue plus a
	// write being offered to the kernel from the writer's goroutine. It
	// rises before that system call, so an EPOLLOUT edge raised by the
	// kernel after a "would block" always sees it (see HandleEvent).
	wqLen          atomic.Int32
	writable       bool
	winflight      bool // a send is queued on the ring (completion mode)
	wshut          bool // no more writes accepted
	shutAfterFlush bool // CloseWrite waits for the queue

	// Delivery, guarded by dmu (taken after rmu or wmu, never before).
	// Only the goroutine that set delivering runs callbacks, so the
	// callbacks of one connection never overlap.
	dmu   lock.Mutex[connDmu]
	rdone seq.List[readDone]
	wdone *fifo[writeDone] // nil until a write completes for a WriteHandler

	// why is set once, by the first close, before the closed bit; read by
	// teardown.
	why atomic.Pointer[closeInfo]
}

// Lock classes (internal/lock) of Conn's mutexes.
type (
	connRmu struct{} // rmu
	connWmu struct{} // wmu
	connDmu struct{} // dmu
)

// closeInfo is why a connection closed. The two reasons without an error
// are shared, so an ordinary close allocates nothing.
type closeInfo struct {
	err      error
	abortive bool
}

var (
	closedGracefully = &closeInfo{}
	closedAbortively = &closeInfo{abortive: true}
)

func newConn(env *Env, loop *pool.Loop, fd sysfd, h Handler) *Conn {
	c := &Conn{fd: fd, loop: loop, env: env, h: h}
	_, c.onWrite = h.(WriteHandler)
	_, c.onFlow = h.(FlowHandler)
	c.life.init()
	c.rgen = seq.NewGenerator(env.ReadSeqStart)
	c.rnext = env.ReadSeqStart
	c.rdone.Init(env.ReadSeqStart)
	c.wgen = seq.NewGenerator(env.WriteSeqStart)
	c.writable = true
	if ch, ok := h.(*chain); ok {
		ch.attach(c)
	}
	return c
}

// LocalAddr is the connection's local address.
func (c *Conn) LocalAddr() netip.AddrPort {
	if !c.life.incref() {
		return netip.AddrPort{}
	}
	defer c.decref()
	return localAddr(c.fd)
}

// connExtra holds what few connections need, out of line so that an
// ordinary connection stays small: the timers of a connect with a
// timeout and of a graceful close that waits for its queue, and the
// address dialled.
type connExtra struct {
	connectTimer, lingerTimer pool.Timer
	addr                      string
	// polled: in completion mode, the descriptor has a readiness
	// registration (while connecting) to remove at teardown.
	polled bool
	// edge: a writable edge came while a send was in flight (completion
	// mode, under wmu); see sendDone.
	edge bool
	// stash holds arrivals of an io_uring multishot receive that no read
	// was issued for yet (guarded by rmu).
	stash *fifo[readDone]
	// flushWhy is the reason a close that flushes first will report
	// (closeAfterFlush).
	flushWhy atomic.Pointer[closeInfo]
	// limit is the connection's own write limit (0: the engine's),
	// written under wmu.
	limit int64
	// writeTimeout is ConnOptions.WriteTimeout (0: none), set before the
	// connection opens. writeTimer watches the queue while it holds bytes
	// (armed says so), and wprogress is when the kernel last took some;
	// both under wmu.
	writeTimeout time.Duration
	writeTimer   pool.Timer
	wprogress    time.Time
	armed        bool
	// flowWant is the water-mark state a FlowHandler should see (1:
	// high); flowTold what it was last told (guarded by dmu).
	flowWant atomic.Int32
	flowTold bool
	// Blocking work (blocking.go): stamps, guarded by bmu, and the
	// results in stamp order, guarded by dmu.
	bmu     lock.Mutex[connExtraBmu]
	bgen    seq.Generator
	results seq.List[func()]
}

// connExtraBmu is the lock class of connExtra.bmu (internal/lock).
type connExtraBmu struct{}

// extra returns the connection's connExtra, making it on first use.
func (c *Conn) extra() *connExtra {
	if x := c.x.Load(); x != nil {
		return x
	}
	x := new(connExtra)
	x.results.Init(0)
	x.connectTimer.Init(c.connectExpired)
	x.lingerTimer.Init(c.lingerExpired)
	x.writeTimer.Init(c.writeStalled)
	if c.x.CompareAndSwap(nil, x) {
		return x
	}
	return c.x.Load()
}

// dialAddr is the address an outbound connection dialled ("" if accepted).
func (c *Conn) dialAddr() string {
	if x := c.x.Load(); x != nil {
		return x.addr
	}
	return ""
}

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remote }

// SetContext attaches a value of the user's to the connection.
// It allocates a small box per call, which keeps the value out of the
// connection's own size.
func (c *Conn) SetContext(v any) { c.ctx.Store(&ctxBox{v}) }

// Context returns the value given to SetContext, or nil.
func (c *Conn) Context() any {
	if b := c.ctx.Load(); b != nil {
		return b.v
	}
	return nil
}

// ctxBox lets SetContext store values of different types and nil.
type ctxBox struct{ v any }

// Read issues one read. Its completion is a call to OnRead with a filled
// buffer; completions come in the order reads were issued. At most
// Env.MaxReads reads may be outstanding.
func (c *Conn) Read() error {
	if ch := c.filters(); ch != nil {
		return ch.read()
	}
	return c.readRaw()
}

// readRaw issues a read on the socket, below any filter.
func (c *Conn) readRaw() error {
	if !c.life.incref() {
		return ErrClosed
	}
	defer c.decref()
	if int(c.rout.Add(1)) > c.env.maxReads() {
		c.rout.Add(-1)
		return ErrTooManyReads
	}
	c.rmu.Lock()
	c.rgen.Next()
	c.rwant++
	c.readIssuedLocked()
	c.rmu.Unlock()
	return nil
}

// CloseWrite shuts down the sending side once every accepted write has
// gone out: the peer reads EOF after the last byte. Reads go on.
func (c *Conn) CloseWrite() error {
	if ch := c.filters(); ch != nil {
		return ch.closeWrite()
	}
	return c.closeWriteRaw()
}

func (c *Conn) closeWriteRaw() error {
	if !c.life.incref() {
		return ErrClosed
	}
	defer c.decref()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wshut {
		return ErrClosed
	}
	c.wshut = true
	if c.queueEmptyLocked() {
		return c.shutdownWriteLocked()
	}
	c.shutAfterFlush = true
	return nil
}

// Close closes the connection gracefully: writes already accepted are
// flushed first, then the descriptor is closed. If they cannot be flushed
// within Env.Linger the connection is aborted. No read completes after
// Close. OnClose follows with a nil error (ErrLingerTimeout if aborted).
// Filters see the close first (TLS sends its close_notify).
func (c *Conn) Close() error {
	if ch := c.filters(); ch != nil {
		return ch.close()
	}
	return c.closeRaw()
}

func (c *Conn) closeRaw() error {
	if !c.life.incref() {
		return ErrClosed
	}
	defer c.decref()
	c.wmu.Lock()
	if c.state == stateClosing {
		c.wmu.Unlock()
		return ErrClosed
	}
	c.state = stateClosing
	c.wshut = true
	empty := c.queueEmptyLocked()
	if !empty {
		// Armed under wmu: the flush that empties the queue takes wmu
		// before it closes, so teardown's StopTimer always comes after.
		c.loop.ArmTimer(&c.extra().lingerTimer, c.env.linger())
	}
	c.wmu.Unlock()
	if empty {
		c.closeWith(nil, false)
	}
	return nil
}

// Abort closes the connection at once: queued writes are dropped and the
// peer gets a reset (SO_LINGER 0). A Unix-domain socket has no reset: its
// peer reads end of stream, or ECONNRESET if bytes it sent were still
// unread here.
func (c *Conn) Abort() error {
	if c.closeWith(nil, true) {
		return nil
	}
	return ErrClosed
}

// Closed reports whether the connection has started closing.
func (c *Conn) Closed() bool { return c.life.closed() }

// closeWith records why the connection closes and drops its own
// reference. Only the first call has an effect; it reports whether it was
// the first.
func (c *Conn) closeWith(err error, abortive bool) bool {
	why := closedGracefully
	switch {
	case err != nil:
		why = &closeInfo{err: err, abortive: abortive}
	case abortive:
		why = closedAbortively
	default:
		if x := c.x.Load(); x != nil && x.flushWhy.Load() != nil {
			why = x.flushWhy.Load()
		}
	}
	// The closed bit picks the winner, so that a loser returns only once
	// the connection is closed: a Write after a losing Abort must fail.
	// (Winning a CAS on why first let the loser return before the bit
	// was set, and a Write in that gap was accepted.)
	if !c.life.markClosed() {
		return false
	}
	// Only destroy reads why, and it cannot run before the decref below
	// drops the connection's own reference.
	c.why.Store(why)
	if c.env.Ring || completionOnly {
		// Operations in flight hold references; cancelling them lets the
		// count reach zero. Done on the loop, where no lock is held.
		c.schedule(schedCancel)
	}
	if ch := c.filters(); ch != nil {
		// Work a filter waits for (a TLS handshake) holds a reference
		// too; it ends now rather than at its own timeout.
		ch.interrupt()
	}
	c.decref()
	return true
}

// closeAfterFlush closes gracefully, as Close does below any filter:
// queued writes (a TLS alert just made) go out first, within the linger
// bound; but OnClose gets err.
func (c *Conn) closeAfterFlush(err error) {
	c.extra().flushWhy.Store(&closeInfo{err: err})
	if c.closeRaw() != nil {
		// Already closing: the reason stays the first close's, unless
		// that close was a graceful one still flushing.
		return
	}
}

// fail closes the connection because of err (a reset, a panic, a failed
// system call).
func (c *Conn) fail(err error) { c.closeWith(err, true) }

// writeStalled runs on the loop when the write timer fires: with bytes
// still queued and none taken for writeTimeout, the connection fails with
// ErrWriteTimeout; with progress since, the timer is armed for what is
// left; with the queue empty, it stops until a write queues again. A
// busy connection so costs one timer operation per writeTimeout, not one
// per write.
func (c *Conn) writeStalled() {
	x := c.x.Load()
	c.wmu.Lock()
	if c.life.closed() || c.queueEmptyLocked() {
		x.armed = false
		c.wmu.Unlock()
		return
	}
	if idle := time.Since(x.wprogress); idle < x.writeTimeout {
		c.loop.ArmTimer(&x.writeTimer, x.writeTimeout-idle)
		c.wmu.Unlock()
		return
	}
	x.armed = false
	c.wmu.Unlock()
	c.env.Counters.WriteTimeouts.Add(1)
	c.fail(ErrWriteTimeout)
}

func (c *Conn) lingerExpired() {
	if c.life.closed() {
		return
	}
	c.closeWith(ErrLingerTimeout, true)
}

// decref drops a reference; the last one after close schedules teardown
// on the connection's loop, where OnClose must run.
func (c *Conn) decref() {
	if c.life.decref() {
		c.schedule(schedDestroy)
	}
}

// schedule posts the connection to its loop unless a post is pending.
func (c *Conn) schedule(bits uint32) {
	if c.sched.Or(bits) == 0 {
		c.loop.Post(c)
	}
}

// RunTask implements pool.Task: it runs the work scheduled so far.
func (c *Conn) RunTask(l *pool.Loop) {
	bits := c.sched.Swap(0)
	if bits&schedDestroy != 0 {
		// No reference is left, so no operation is in flight: a pending
		// cancel has nothing to do.
		c.destroy()
		return
	}
	if bits&schedCancel != 0 {
		c.cancelOps()
	}
	if bits&schedOpen != 0 {
		// The open task holds a reference of its own (see open).
		c.deliverOpen()
		c.decref()
	}
	if !c.life.incref() {
		return
	}
	if bits&schedRead != 0 {
		c.performReads(0)
	}
	c.deliver()
	c.decref()
}

// open hands a connected descriptor to its loop: OnOpen is the first
// callback. It takes a reference that deliverOpen's caller drops, so the
// connection cannot be torn down before OnOpen ran.
func (c *Conn) open() {
	if c.life.incref() {
		c.schedule(schedOpen)
	}
}

func (c *Conn) deliverOpen() {
	c.wmu.Lock()
	if c.state == stateConnecting {
		c.state = stateOpen
	}
	c.opened = true
	c.wmu.Unlock()
	c.env.Counters.ConnsOpen.Add(1)
	c.env.Counters.ConnsTotal.Add(1)
	c.dmu.Lock()
	c.delivering = true
	c.dmu.Unlock()
	c.callOpen()
	c.dmu.Lock()
	c.delivering = false
	c.dmu.Unlock()
}

// destroy runs on the loop once the last reference is gone: nothing else
// can touch the connection now. It releases everything the connection
// holds, closes the descriptor and delivers OnClose.
func (c *Conn) destroy() {
	if x := c.x.Load(); x != nil {
		c.loop.StopTimer(&x.lingerTimer)
		c.loop.StopTimer(&x.connectTimer)
		c.loop.StopTimer(&x.writeTimer)
	}
	why := c.why.Load()
	err := why.err
	c.closeDescriptor(why.abortive)

	// Completed writes are delivered as completed; queued ones fail.
	c.deliver()
	c.wmu.Lock()
	for !c.queueEmptyLocked() {
		req := c.wq.front()
		c.popLocked()
		c.completeWriteLocked(req, ErrClosed)
	}
	c.wq = nil
	opened := c.opened
	c.wmu.Unlock()
	c.deliver()
	c.dmu.Lock()
	for {
		d, ok := c.rdone.Pop()
		if !ok {
			break
		}
		d.release()
	}
	c.dmu.Unlock()
	if x := c.x.Load(); x != nil {
		for !x.stash.empty() {
			d := x.stash.pop()
			d.release()
		}
	}
	if opened {
		c.env.Counters.ConnsOpen.Add(-1)
	} else if err == nil {
		err = &DialError{Addr: c.dialAddr(), Err: ErrClosed}
	}
	c.callClose(err)
}
