package sock

import (
	"fmt"
	"os"

	"golang.org/x/sys/windows"

	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/pool"
	"github.com/ioreactor/reactor/seq"
)

// The Windows half of ring_linux.go: a connection's reads and writes as
// overlapped operations on the engine's completion port.
//
// Receives: up to Env.MaxReads WSARecvs in flight, each into a pooled
// buffer taken when it is issued and stamped with the next read stamp.
// Winsock fills a socket's receives in the order they were posted, and the
// port hands their packets to whichever threads dequeue them, in any
// order: the in-order list puts them back (Stats.ReadsReordered counts
// it). Sends: one WSASend in flight, gathering the queued writes' buffers
// in order, as on io_uring.
//
// Every operation in flight holds a reference to its connection, and its
// OVERLAPPED, its WSABUFs and its buffers live in the connection's connIO,
// reachable until the packet is handled. Closing cancels them with
// CancelIoEx; their packets (error 995) drop the references.
//
// An operation that completes at once on a socket with skip-on-success
// queues no packet: the issuer claims it (Operation.Complete) and posts it
// to the loop as a task, so it is handled exactly once, on an I/O thread.
// Without skip-on-success the packet comes anyway and is the only path.

// Operations of a connection.
const (
	opConnect poller.Op = 1
	opSend    poller.Op = 2
	opRecv0   poller.Op = 16 // opRecv0+i is receive slot i
)

// maxRecvSlots bounds Env.MaxReads on Windows (the Op byte holds the slot).
const maxRecvSlots = 64

type connIO struct {
	skip  bool // skip-on-success took effect on this socket
	rops  []*recvOp
	rbusy int // receives in flight, under rmu
	wop   sendOp
	cop   connectOp
	// connecting: the ConnectEx is in flight, under rmu. Not the
	// connection's dialing flag, which the first of the connect's ends
	// clears (a timeout) while the operation may still be pending.
	connecting bool
}

type recvOp struct {
	poller.Operation
	c     *Conn
	busy  bool         // under rmu
	b     *pool.Buffer // the buffer, or the head of a chain, being filled
	room  int
	wsa   [maxReadChain]windows.WSABuf
	flags uint32
	s     seq.Number
	inline
}

type sendOp struct {
	poller.Operation
	c    *Conn
	bufs []windows.WSABuf
	inline
}

// inline is the result of an operation that completed at once with no
// packet to follow, kept for the task that hands it to the loop.
type inline struct{ n, errno uint32 }

// settleIssue sorts out an issuing call's result: pending, or done at
// once with a packet to follow (no skip-on-success on this socket): the
// packet completes it. Otherwise (done at once, or failed at once) no
// packet will come: the issuer claims the completion and posts t, which
// handles it on the loop, exactly once.
func (c *Conn) settleIssue(op *poller.Operation, in *inline, t pool.Task, n uint32, err error) {
	settleIssue(c.env, c.loop, c.os.io.skip, op, in, t, n, err)
}

// settleIssue is Conn.settleIssue for any socket: skip says whether
// skip-on-success took effect on it, l is the loop that runs t.
func settleIssue(env *Env, l *pool.Loop, skip bool, op *poller.Operation, in *inline, t pool.Task, n uint32, err error) {
	switch {
	case err == windows.ERROR_IO_PENDING:
	case err == nil && !skip:
	case op.Complete():
		*in = inline{n: n}
		if err != nil {
			*in = inline{errno: errnoOf(err)}
		}
		env.Counters.InlineCompletions.Add(1)
		l.Post(t)
	}
}

func newConnIO(c *Conn) *connIO {
	io := &connIO{rops: make([]*recvOp, min(c.env.maxReads(), maxRecvSlots))}
	for i := range io.rops {
		io.rops[i] = &recvOp{c: c}
		io.rops[i].Op = opRecv0 + poller.Op(i)
	}
	io.wop.c = c
	io.wop.Op = opSend
	io.cop.c = c
	io.cop.Op = opConnect
	return io
}

// errnoOf is the Win32 error of a failed issuing call.
func errnoOf(err error) uint32 {
	if e, ok := err.(windows.Errno); ok {
		return uint32(e)
	}
	return uint32(windows.ERROR_GEN_FAILURE)
}

// issueRecvLocked issues receives while reads are wanted and slots are
// free. Called with rmu held by a holder of a reference; the closed check
// under rmu orders it against cancelOps.
func (c *Conn) issueRecvLocked() {
	io := c.os.io
	for c.rwant > 0 && io.rbusy < len(io.rops) && !c.life.closed() {
		var op *recvOp
		for _, o := range io.rops {
			if !o.busy {
				op = o
				break
			}
		}
		op.busy = true
		io.rbusy++
		c.rwant--
		op.s = c.rnext
		c.rnext = c.rnext.Next()
		// One buffer, or a chain (scatter) when the last receive filled
		// all it was given and ReadChain allows: as readv on epoll.
		k := 1
		if c.rfull {
			k = c.env.readChain()
		}
		op.b = c.env.Buffers.GetChain(k * c.env.Buffers.Size())
		nb := 0
		op.room = 0
		for x := op.b; x != nil; x = x.Next() {
			sp := x.Space()
			op.wsa[nb] = windows.WSABuf{Len: uint32(len(sp)), Buf: &sp[0]}
			op.room += len(sp)
			nb++
		}
		op.flags = 0
		c.life.acquire() // the operation's reference
		op.Arm()
		var n uint32
		err := windows.WSARecv(c.fd, &op.wsa[0], uint32(nb), &n, &op.flags, &op.Overlapped, nil)
		c.settleIssue(&op.Operation, &op.inline, op, n, err)
	}
}

// RunTask implements pool.Task for a receive that completed at once.
func (op *recvOp) RunTask(*pool.Loop) { op.c.recvDone(op, op.n, op.errno) }

// recvDone handles a receive's completion and drops its reference.
func (c *Conn) recvDone(op *recvOp, n, errno uint32) {
	defer c.decref()
	// The slot may be issued again below: take what belongs to this
	// completion first.
	b, st, room := op.b, op.s, op.room
	op.b = nil
	c.rmu.Lock()
	op.busy = false
	c.os.io.rbusy--
	var d readDone
	switch {
	case c.life.closed():
		c.rmu.Unlock()
		b.Release()
		return
	case errno != 0:
		c.rmu.Unlock()
		b.Release()
		c.fail(os.NewSyscallError("WSARecv", windows.Errno(errno)))
		return
	case n == 0:
		b.Release()
		d.eof = true
	default:
		d.b = commitChain(b, int(n))
		c.rfull = int(n) == room
		c.env.addIn(c.loop, int(n))
	}
	c.issueRecvLocked()
	c.rmu.Unlock()
	c.completeRead(st, d)
}

// issueSendLocked issues one WSASend for the queued writes, oldest first,
// unless one is in flight. Called with wmu held by a holder of a
// reference.
func (c *Conn) issueSendLocked() {
	if c.winflight || c.queueEmptyLocked() || c.life.closed() {
		return
	}
	op := &c.os.io.wop
	bufs := op.bufs[:0]
	room := sendMax
	for i := 0; i < c.wq.len() && len(bufs) < iovMax && room > 0; i++ {
		for _, b := range c.wq.at(i).pending() {
			if len(bufs) == iovMax || room == 0 {
				break
			}
			n := min(len(b), room)
			room -= n
			bufs = append(bufs, windows.WSABuf{Len: uint32(n), Buf: &b[0]})
		}
	}
	op.bufs = bufs
	c.winflight = true
	c.life.acquire() // the operation's reference
	op.Arm()
	var n uint32
	err := windows.WSASend(c.fd, &bufs[0], uint32(len(bufs)), &n, 0, &op.Overlapped, nil)
	c.settleIssue(&op.Operation, &op.inline, op, n, err)
}

// sendMax bounds the bytes one WSASend takes. An overlapped send completes
// only once Windows has taken all of it, so its size is the granularity at
// which the engine sees a slow reader's progress (WriteTimeout), and what
// a send pins until then. The rest of a longer queue follows in the next
// send, as under the write lock no other write's bytes can come between.
const sendMax = 256 << 10

// clearOp has nothing to drop on Windows: the WSABUF array is the
// connection's, cleared when its send completes.
func (req *writeReq) clearOp() {}

// RunTask implements pool.Task for a send that completed at once.
func (op *sendOp) RunTask(*pool.Loop) { op.c.sendDone(op.n, op.errno) }

// sendDone handles a send's completion and drops its reference. The bytes
// count even when the send failed (a cancelled send reports what it sent).
func (c *Conn) sendDone(n, errno uint32) {
	defer c.decref()
	c.wmu.Lock()
	c.winflight = false
	clear(c.os.io.wop.bufs)
	if c.life.closed() {
		c.wmu.Unlock()
		return
	}
	c.sentLocked(int(n))
	if errno != 0 {
		c.wmu.Unlock()
		c.fail(os.NewSyscallError("WSASend", windows.Errno(errno)))
		return
	}
	c.sendDoneLocked()
}

// cancelOps runs on the loop after the connection closed: CancelIoEx ends
// every operation in flight (packets with error 995).
func (c *Conn) cancelOps() {
	io := c.os.io
	if io == nil {
		return
	}
	c.rmu.Lock()
	c.wmu.Lock()
	busy := io.rbusy > 0 || c.winflight || io.connecting
	if busy {
		windows.CancelIoEx(c.fd, nil)
	}
	c.wmu.Unlock()
	c.rmu.Unlock()
}

// handleCompletion dispatches a packet of the port.
func (c *Conn) handleCompletion(ev *poller.Event) {
	switch {
	case ev.Op == opSend:
		c.sendDone(uint32(ev.Res), ev.Err)
	case ev.Op == opConnect:
		c.connectDone(ev.Err)
	case ev.Op >= opRecv0 && int(ev.Op-opRecv0) < len(c.os.io.rops):
		c.recvDone(c.os.io.rops[ev.Op-opRecv0], uint32(ev.Res), ev.Err)
	default:
		panic(fmt.Sprintf("sock: completion of unknown operation %d", ev.Op))
	}
}
