package sock

import (
	"os"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/pool"
)

// On Linux the engine emulates completions on edge-triggered epoll: a
// connection is registered once for input, output and peer hang-up, and
// remembers the last edge it saw (readable, writable) until a system call
// says "would block".

type sysfd = int

type iovecs = []unix.Iovec

type msghdr = unix.Msghdr

// startPlatform has nothing to decide on Linux.
func (e *Env) startPlatform() error { return nil }

// completionOnly is false: Linux has epoll's readiness path too (Env.Ring
// picks completion mode).
const completionOnly = false

// connOS is empty on Linux: the ring's operations need no memory of their
// own beyond writeReq.
type connOS struct{}

// iovMax is IOV_MAX on Linux: a writev takes at most this many buffers.
// A write with more goes out in several writev calls, all under the
// connection's write lock, so no other write's bytes come between them.
const iovMax = 1024

// readBurst bounds the reads one connection performs in a row before the
// thread turns to other work (about 64 KiB with the default buffers).
const readBurst = 4

// registration interest of a connection: edge-triggered, both directions.
const connInterest = poller.Readable | poller.Writable | poller.EdgeTriggered

// HandleEvent implements pool.Handler.
func (c *Conn) HandleEvent(l *pool.Loop, ev *poller.Event) {
	if ev.Flags&poller.Done != 0 {
		// A completion: its operation holds a reference of its own.
		c.handleCompletion(ev)
		return
	}
	f := ev.Flags
	if !c.life.incref() {
		return
	}
	defer c.decref()
	if c.dialing.Load() {
		c.finishConnect(f)
		return
	}
	if c.env.Ring {
		// Completion mode uses readiness only to learn that a connect
		// finished and, after a send met EAGAIN, that there is room.
		if f&(poller.Out|poller.Err|poller.Hup) != 0 {
			c.writableEdge()
		}
		return
	}
	if f&poller.Err != 0 {
		if err := soError(c.fd, "read"); err != nil {
			c.fail(err)
			return
		}
	}
	if f&(poller.In|poller.Hup) != 0 {
		c.performReads(f)
	}
	// With no write pending the edge changes nothing: a write that met
	// "would block" counted itself in wqLen before its system call, so an
	// edge raised after that call cannot miss it.
	if f&poller.Out != 0 && c.wqLen.Load() > 0 {
		c.flush()
		c.deliver()
	}
}

// readIssuedLocked runs, under rmu, after Read stamped a new read: if the
// descriptor may hold data, the loop performs it (never the caller: its
// goroutine is not an I/O thread, and a read performed here would deliver
// there).
func (c *Conn) readIssuedLocked() {
	if c.env.Ring {
		if c.stashLen() > 0 {
			// Data already arrived: complete from the stash, on the loop.
			c.schedule(schedRead)
			return
		}
		c.issueRecvLocked()
		return
	}
	if c.readable && !c.reading {
		c.schedule(schedRead)
	}
}

// performReads reads for issued reads while the descriptor has data. Runs
// on the loop, with a reference held.
//
// In shared mode only the first read of a burst is completed by this
// thread; the others are posted as completion packets that any thread of
// the shared loop may take, as IOCP hands the completions of one socket to
// whichever threads dequeue them. The in-order list puts them back in
// issue order.
//
// edge is the event that brought new input (In, Hup), or 0 when a posted
// task asks for reads already known to be possible.
func (c *Conn) performReads(edge poller.Flags) {
	if c.env.Ring {
		c.drainStash()
		return
	}
	first := true
	c.rmu.Lock()
	c.reading = true
	defer c.doneReading()
	if edge != 0 {
		c.readable = true
		if edge&poller.Hup != 0 {
			c.rhup = true
		}
	}
	for burst := 0; c.rwant > 0 && c.readable && !c.life.closed(); burst++ {
		if burst == readBurst {
			// Fairness: a connection whose peer never pauses would keep
			// the thread here. Its next reads wait behind the other
			// descriptors' events, in the loop's task queue.
			c.schedule(schedRead)
			break
		}
		b, room := c.readBuffers()
		n, err := c.readInto(b)
		if err == unix.EAGAIN || err == unix.EINTR {
			c.readable = err == unix.EINTR
			b.Release()
			continue
		}
		s := c.rnext
		c.rnext = s.Next()
		c.rwant--
		var d readDone
		switch {
		case err != nil:
			c.rmu.Unlock()
			b.Release()
			c.fail(os.NewSyscallError("read", err))
			c.rmu.Lock()
			return
		case n == 0:
			b.Release()
			d.eof = true
		default:
			d.b = commitChain(b, n)
			c.env.addIn(c.loop, n)
			c.rfull = n == room
			// A short read emptied the socket: the next byte to arrive
			// raises a new edge. Not so after a hang-up, whose edge is
			// already spent: read on until EOF.
			if n < room && !c.rhup {
				c.readable = false
			}
		}
		c.rmu.Unlock()
		if c.env.Shared && !first {
			c.postRead(s, d)
		} else {
			c.completeRead(s, d)
		}
		first = false
		c.rmu.Lock()
	}
}

// doneReading ends a performReads, which returns with rmu held.
func (c *Conn) doneReading() {
	c.reading = false
	c.rmu.Unlock()
}

// readBuffers takes the buffers for one read: one, or a chain when the
// last read filled everything it had. It returns the head and the room.
// Called with rmu held.
func (c *Conn) readBuffers() (*pool.Buffer, int) {
	b := c.env.Buffers.Get()
	k := 1
	if c.rfull {
		k = c.env.readChain()
	}
	for tail, i := b, 1; i < k; i++ {
		x := c.env.Buffers.Get()
		tail.SetNext(x)
		tail = x
	}
	return b, k * b.Cap()
}

// readInto makes one read(2), or one readv(2) for a chain.
func (c *Conn) readInto(b *pool.Buffer) (int, error) {
	if b.Next() == nil {
		return unix.Read(c.fd, b.Space())
	}
	var iov [maxReadChain]unix.Iovec
	k := 0
	for x := b; x != nil; x = x.Next() {
		sp := x.Space()
		iov[k] = iovecOf(sp)
		k++
	}
	// The iovecs point into pooled buffers that b keeps reachable; the
	// array is passed by pointer in the call expression, which keeps it
	// alive and unmoved for the call.
	n, _, e := unix.Syscall(unix.SYS_READV, uintptr(c.fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// enqueueLocked accepts req, which is stamped. With nothing queued ahead
// of it the kernel is offered the bytes at once, from the caller's
// goroutine; the rest waits for the descriptor to become writable.
func (c *Conn) enqueueLocked(req *writeReq) {
	if c.env.Ring {
		c.enqueueOpLocked(req)
		return
	}
	c.wqLen.Add(1)
	if c.queueEmptyLocked() && c.writable {
		done, err := c.writeOutLocked(req)
		if err != nil {
			c.wqLen.Add(-1)
			c.completeWriteLocked(req, err)
			c.schedule(schedDeliver)
			c.fail(err)
			return
		}
		if done {
			c.wqLen.Add(-1)
			c.completeWriteLocked(req, nil)
			if c.onWrite {
				c.schedule(schedDeliver)
			}
			return
		}
		if testHookWouldBlock != nil {
			testHookWouldBlock()
		}
	}
	c.pushLocked(req)
}

// testHookWouldBlock, when set by a test, runs after an inline write met
// "would block" and before the write is queued: the window in which the
// EPOLLOUT edge may already arrive.
var testHookWouldBlock func()

// writeOutLocked writes req's pending bytes until all are taken or the
// kernel would block. Called with wmu held.
func (c *Conn) writeOutLocked(req *writeReq) (done bool, err error) {
	for req.left > 0 {
		n, err := c.writeSome(req)
		if n > 0 {
			req.advance(n)
			c.env.addOut(c.loop, n)
		}
		switch err {
		case nil:
		case unix.EINTR:
		case unix.EAGAIN:
			c.writable = false
			return false, nil
		default:
			return false, os.NewSyscallError("writev", err)
		}
	}
	return true, nil
}

// writeSome makes one write or writev system call for req's pending
// bytes, at most iovMax buffers.
func (c *Conn) writeSome(req *writeReq) (int, error) {
	p := req.pending()
	if len(p) == 1 {
		return unix.Write(c.fd, p[0])
	}
	if len(p) > iovMax {
		p = p[:iovMax]
	}
	iov := slices.Grow(req.iov[:0], len(p))
	for _, b := range p {
		iov = append(iov, iovecOf(b))
	}
	req.iov = iov
	// The iovec array and the buffers it points to are Go memory reachable
	// from req for the duration of the call; converting the pointer to
	// uintptr in the call expression keeps them alive and unmoved.
	n, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(c.fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	clear(iov)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// flush writes queued requests in order while the descriptor takes them.
// Runs on the loop, with a reference held, after an edge says writable.
func (c *Conn) flush() {
	c.wmu.Lock()
	c.writable = true
	for !c.queueEmptyLocked() {
		req := c.wq.front()
		before := req.left
		done, err := c.writeOutLocked(req)
		c.takenLocked(before - req.left)
		if err != nil {
			c.wmu.Unlock()
			c.fail(err)
			return
		}
		if !done {
			break
		}
		c.popLocked()
		c.completeWriteLocked(req, nil)
	}
	closeNow, ok := c.drainedLocked()
	if !ok {
		return
	}
	c.wmu.Unlock()
	if closeNow {
		c.closeWith(nil, false)
	}
}

func (c *Conn) shutdownWriteLocked() error {
	if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
		return os.NewSyscallError("shutdown", err)
	}
	return nil
}

// closeDescriptor removes the descriptor from the poller and the token
// table, then closes it: with SO_LINGER 0 when abortive, so the peer gets
// a reset instead of a FIN. Runs once, from destroy.
func (c *Conn) closeDescriptor(abortive bool) {
	if x := c.x.Load(); !c.env.Ring || x != nil && x.polled {
		if err := c.loop.Poller().Remove(c.fd); err != nil {
			c.env.Counters.CloseErrors.Add(1)
		}
	}
	if c.env.Ring {
		// Before the close: the ring's file table holds the socket open
		// until the loop submits this, at the end of its turn.
		c.loop.Poller().UnregisterFile(c.fd)
	}
	c.loop.Table().Remove(&c.reg)
	c.loop.AddLoad(-1)
	if abortive {
		// Best effort: if it fails the close below still happens, as a
		// graceful one.
		if err := unix.SetsockoptLinger(c.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
			c.env.Counters.CloseErrors.Add(1)
		}
	}
	closeFD(c.env, c.fd)
}

// register publishes c in the token table and the poller of its loop.
func (c *Conn) register() error {
	tok := c.loop.Table().Insert(&c.reg, c)
	if c.env.Ring {
		// Receives and sends then skip the kernel's descriptor lookup.
		c.loop.Poller().RegisterFile(c.fd)
	}
	if c.env.Ring && !c.dialing.Load() {
		// Completion mode: operations carry the token; nothing to watch.
		c.loop.AddLoad(1)
		return nil
	}
	if c.env.Ring {
		c.extra().polled = true
	}
	if err := c.loop.Poller().Add(c.fd, tok, connInterest); err != nil {
		c.loop.Table().Remove(&c.reg)
		// The caller closes the descriptor, which a slot would hold open.
		c.loop.Poller().UnregisterFile(c.fd)
		return err
	}
	c.loop.AddLoad(1)
	c.loop.Kick()
	return nil
}

// soError reads the descriptor's pending error (SO_ERROR) and names it
// after op, the operation it belongs to.
func soError(fd int, op string) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return os.NewSyscallError("getsockopt", err)
	}
	if v != 0 {
		return os.NewSyscallError(op, unix.Errno(v))
	}
	return nil
}
