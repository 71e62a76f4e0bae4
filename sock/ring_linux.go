package sock

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor/internal/lock"
	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/pool"
)

// Completion mode (Env.Ring): the loops' pollers are io_uring instances and
// a connection's reads and writes are operations queued on its loop's
// ring, completed by the kernel and reported by the loop's Wait. No read
// or write system call is made per message: the loop's one io_uring_enter
// submits every operation queued since the last and collects every
// completion that has arrived. This is the shape IOCP has on Windows:
// issue, then complete on an I/O thread.
//
// Per connection at most one receive and one send are in flight; further
// issued reads and accepted writes wait their turn, so the bytes of the
// stream and the completions stay in one order without relying on the
// kernel's ordering of two operations on one socket. Each operation in
// flight holds a reference to its connection, so the connection (its
// descriptor, its queued buffers) outlives every operation the kernel
// still holds; closing cancels them, and their completions drop those
// references.
//
// Receives take a buffer from the loop's provided-buffer ring when data
// arrives, so an idle connection holds no buffer.

// Operations of a connection, carried in the ring's user data.
const (
	opRecv poller.Op = 1
	opSend poller.Op = 2
)

// recvRing is one loop's set of buffers lent to the kernel: bufs[bid] is
// the pooled buffer the ring entry with that id points into. When a
// receive fills it, the buffer goes to the reader and a fresh one is
// provided under the same id in the ring's next slot, so the ring stays
// full. slots and where map ring slots to ids and back: a bundle
// receive fills consecutive slots.
type recvRing struct {
	p     *poller.Poller
	mu    lock.Mutex[recvRingMu]
	lent  int            // ids 0..lent-1 are in use; the rest wait for growth
	bufs  []*pool.Buffer // by id; as long as the ring has slots
	slots []uint16       // ring slot → id provided there last
	where []int          // id → the slot it was provided in
	// spare holds buffers that this loop's connections have finished
	// sending (recycle), lent again in place of a fresh one from the pool.
	// An echo hands every received buffer back to the connection, so in
	// steady state a receive's replacement comes from here: no Get and no
	// Release, which cost the pool's shared count and a shard lock each,
	// twice per message. At most lent are kept, so a thread holds at most
	// twice its loan; they are counted apart from it (Env.RingSpares).
	spare []*pool.Buffer
}

// recvRingMu is the lock class of recvRing.mu (internal/lock).
type recvRingMu struct{}

// provideLocked lends b to the kernel under id bid.
func (r *recvRing) provideLocked(bid uint16, b *pool.Buffer) {
	r.bufs[bid] = b
	slot, err := r.p.ProvideBuffer(bid, b.Space())
	if err != nil {
		panic("sock: providing a buffer to the ring: " + err.Error())
	}
	r.slots[slot] = bid
	r.where[bid] = slot
}

// startRings gives every loop of env a recvRing filled with buffers.
func (e *Env) startRings() error {
	loops := e.Group.Loops()
	e.rings = make([]*recvRing, len(loops))
	for i, l := range loops {
		p := l.Poller()
		n := p.BufferSlots()
		if !p.IsRing() || n == 0 {
			return fmt.Errorf("sock: loop %d has no ring-backed poller with a buffer ring", i)
		}
		r := &recvRing{p: p, bufs: make([]*pool.Buffer, n), slots: make([]uint16, n), where: make([]int, n)}
		r.mu.Lock()
		r.growLocked(e, min(max(e.RingBuffers, 1), n))
		r.mu.Unlock()
		e.rings[i] = r
	}
	return nil
}

// stopRings returns the rings' buffers to the pool. Only after the loops
// have stopped and their rings are closed: the kernel no longer writes.
func (e *Env) stopRings() {
	for _, r := range e.rings {
		if r == nil {
			continue
		}
		r.mu.Lock()
		for i, b := range r.bufs {
			if b != nil {
				b.Release()
				r.bufs[i] = nil
				e.Counters.RingBuffers.Add(-1)
			}
		}
		for _, b := range r.spare {
			b.Release()
		}
		r.spare = nil
		r.mu.Unlock()
	}
}

// growLocked lends k more buffers, as far as the ring has slots.
func (r *recvRing) growLocked(e *Env, k int) {
	for k > 0 && r.lent < len(r.bufs) {
		r.provideLocked(uint16(r.lent), r.freshLocked(e))
		r.lent++
		k--
		e.Counters.RingBuffers.Add(1)
	}
}

// freshLocked is an empty buffer to lend: a spare if there is one, else
// one from the pool.
func (r *recvRing) freshLocked(e *Env) *pool.Buffer {
	n := len(r.spare)
	if n == 0 {
		return e.Buffers.Get()
	}
	b := r.spare[n-1]
	r.spare[n-1] = nil
	r.spare = r.spare[:n-1]
	return b
}

// recycle keeps b, a buffer a connection of this loop has finished
// with, as a spare, and reports whether it took it. It takes a single
// buffer of e's pool while there is room; anything else (a chain, a
// buffer of another pool) is its caller's to release. b is emptied.
func (r *recvRing) recycle(e *Env, b *pool.Buffer) bool {
	if b.Next() != nil || !e.Buffers.Owns(b) {
		return false
	}
	r.mu.Lock()
	ok := len(r.spare) < r.lent
	if ok {
		b.Reset()
		r.spare = append(r.spare, b)
	}
	r.mu.Unlock()
	return ok
}

// RingSpares is how many buffers the loops' rings hold as spares: in use
// by the pool's count, lent to no one yet.
func (e *Env) RingSpares() int64 {
	var n int64
	for _, r := range e.rings {
		if r == nil {
			continue
		}
		r.mu.Lock()
		n += int64(len(r.spare))
		r.mu.Unlock()
	}
	return n
}

// recycleOwnedLocked hands a completed write's buffer to the loop's ring
// as a spare instead of releasing it to the pool (completion mode).
// Called with wmu held, before the write completes.
func (c *Conn) recycleOwnedLocked(req *writeReq) {
	if req.owned == nil || c.env.rings == nil {
		return
	}
	if c.env.rings[c.loop.ID()].recycle(c.env, req.owned) {
		req.owned = nil
	}
}

// grow doubles the buffers lent, up to the ring's slots: a receive found
// none, so the loop's load needs more than it has.
func (r *recvRing) grow(e *Env) {
	r.mu.Lock()
	r.growLocked(e, r.lent)
	r.mu.Unlock()
}

// take removes the buffers a receive of n bytes filled, starting with id
// bid (one buffer when n ≤ 0), and lends fresh ones in their place. It
// returns them as a chain with their lengths committed.
func (r *recvRing) take(env *Env, bid uint16, n int) *pool.Buffer {
	r.mu.Lock()
	defer r.mu.Unlock()
	if int(bid) >= len(r.bufs) || r.bufs[bid] == nil {
		panic(fmt.Sprintf("sock: completion names buffer %d, which the ring does not hold", bid))
	}
	var head, tail *pool.Buffer
	slot := r.where[bid]
	for {
		id := r.slots[slot]
		b := r.bufs[id]
		k := min(max(n, 0), b.Cap())
		b.Commit(k)
		n -= k
		r.provideLocked(id, r.freshLocked(env))
		if head == nil {
			head = b
		} else {
			tail.SetNext(b)
		}
		tail = b
		if n <= 0 {
			return head
		}
		slot = (slot + 1) % len(r.slots)
	}
}

// issueRecvLocked queues a receive if reads are wanted and none is in
// flight. Called with rmu held by a holder of a reference. The closed
// check under rmu orders it against cancelOps, which takes rmu after the
// closed bit is set: a receive is either queued before the cancellation
// (which then ends it) or not at all.
//
// Messages (arrivals smaller than a buffer) are received multishot:
// armed once, the receive completes for every arrival until it ends, so a
// connection that keeps reading pays for one arm instead of one per
// message (measured: 3–10% less server CPU per ping-pong message). Data
// that arrives while no read is issued waits in the connection's stash,
// bounded: at stashMax entries the receive is cancelled, so a reader that
// stops reading lets the peer's sends back up in the kernel, as with
// epoll. A stream (an arrival that filled its buffer) switches to
// one-shot bundle receives, which take everything that has accumulated,
// up to ReadChain buffers, in one completion: a multishot receive there
// completed once per arrival and cost twice the CPU per byte.
func (c *Conn) issueRecvLocked() {
	if c.rinflight || c.rwant == 0 || c.life.closed() {
		return
	}
	c.rinflight = true
	c.life.acquire() // the operation's reference, held until it ends
	bundle := 0
	if c.rfull && c.env.readChain() > 1 {
		bundle = c.env.readChain() * c.env.Buffers.Size()
	}
	c.rmulti = !c.rfull
	if err := c.loop.Poller().Recv(c.fd, c.reg.Token(), opRecv, bundle, c.rmulti); err != nil {
		panic("sock: queuing a receive: " + err.Error())
	}
	c.loop.Kick()
}

// stashMax bounds the arrivals a connection holds for reads not yet
// issued before it stops receiving.
const stashMax = 4

// recvDone handles a completion of the receive. The operation's reference
// is dropped when the receive ends (a completion without More).
func (c *Conn) recvDone(ev *poller.Event) {
	ended := ev.Flags&poller.More == 0
	if ended {
		defer c.decref()
	}
	var b *pool.Buffer
	if ev.Flags&poller.Buffer != 0 {
		b = c.env.rings[c.loop.ID()].take(c.env, ev.Buf, int(ev.Res))
	}
	c.rmu.Lock()
	if ended {
		c.rinflight = false
	}
	res := ev.Res
	var d readDone
	switch {
	case c.life.closed():
		// No read completes after close (its buffer was filled for
		// nobody), and nothing more is issued.
		c.rmu.Unlock()
		if b != nil {
			b.Release()
		}
		return
	case res == -int32(unix.ECANCELED):
		// Cancelled because the stash was full (re-armed once it drains)
		// or because a stream began (re-armed now, one-shot).
		if c.stashLen() == 0 {
			c.issueRecvLocked()
		}
		c.rmu.Unlock()
		return
	case res == -int32(unix.ENOBUFS):
		// Every buffer lent was in use at that moment: lend more (up to
		// the ring's slots) and ask again. Buffers are refilled as their
		// completions are handled, so even a ring at its size succeeds on
		// a later enter.
		c.env.Counters.RecvNoBuffers.Add(1)
		c.env.rings[c.loop.ID()].grow(c.env)
		c.issueRecvLocked()
		c.rmu.Unlock()
		return
	case res == -int32(unix.EAGAIN) && ended:
		// As for sends (see sendDone): the kernel's retry gave up. A
		// receive waits on the kernel's poll for data, so asking again
		// cannot spin unless the socket calls itself readable with
		// nothing to read.
		c.env.Counters.RecvRetries.Add(1)
		c.issueRecvLocked()
		c.rmu.Unlock()
		if b != nil {
			b.Release()
		}
		return
	case res < 0:
		c.rmu.Unlock()
		if b != nil {
			b.Release()
		}
		c.fail(os.NewSyscallError("recv", unix.Errno(-res)))
		return
	case res == 0:
		if b != nil {
			b.Release()
		}
		d.eof = true
	default:
		if b == nil {
			c.rmu.Unlock()
			panic("sock: a receive completed with data and no buffer")
		}
		d.b = b
		c.rfull = int(res) >= b.Cap()
		c.env.addIn(c.loop, int(res))
		if c.rfull && c.rmulti && !ended {
			// A stream began: end the multishot receive; the next one is
			// a one-shot bundle (see issueRecvLocked).
			if err := c.loop.Poller().CancelOp(c.reg.Token(), opRecv); err != nil {
				panic("sock: cancelling a receive: " + err.Error())
			}
			c.rmulti = false
		}
	}
	if c.rwant == 0 || c.stashLen() > 0 {
		// No read is waiting for it (or earlier arrivals are): keep it,
		// in order, for the next Read.
		c.env.Counters.RecvStashed.Add(1)
		x := c.extra()
		if x.stash == nil {
			x.stash = new(fifo[readDone])
		}
		x.stash.push(d)
		if x.stash.len() >= stashMax && c.rinflight && c.rmulti {
			c.rmulti = false // one cancellation is enough
			c.env.Counters.RecvPaused.Add(1)
			if err := c.loop.Poller().CancelOp(c.reg.Token(), opRecv); err != nil {
				panic("sock: cancelling a receive: " + err.Error())
			}
		}
		c.rmu.Unlock()
		return
	}
	s := c.rnext
	c.rnext = s.Next()
	c.rwant--
	c.issueRecvLocked()
	c.rmu.Unlock()
	c.completeRead(s, d)
}

func (c *Conn) stashLen() int {
	if x := c.x.Load(); x != nil {
		return x.stash.len()
	}
	return 0
}

// drainStash completes issued reads from the stash, in order, then arms
// the receive again if reads are still wanted. Runs on the loop (a Read
// that finds the stash non-empty schedules it), with a reference held.
func (c *Conn) drainStash() {
	c.rmu.Lock()
	for c.rwant > 0 && c.stashLen() > 0 && !c.life.closed() {
		d := c.x.Load().stash.pop()
		s := c.rnext
		c.rnext = s.Next()
		c.rwant--
		c.rmu.Unlock()
		c.completeRead(s, d)
		c.rmu.Lock()
	}
	if c.stashLen() == 0 {
		c.issueRecvLocked()
	}
	c.rmu.Unlock()
}

// issueSendLocked queues a send if none is in flight and writes are
// queued. Called with wmu held by a holder of a reference. One sendmsg
// gathers the pending slices of the queued writes, oldest first, up to
// IOV_MAX: writes stay whole and in order because the stream takes them
// in exactly that order, and the next send starts only after this one
// completes.
func (c *Conn) issueSendLocked() {
	if c.winflight || !c.writable || c.queueEmptyLocked() || c.life.closed() {
		return
	}
	req := c.wq.front()
	p := req.pending()
	if len(p) > iovMax {
		p = p[:iovMax]
	}
	c.winflight = true
	if x := c.x.Load(); x != nil {
		x.edge = false // only an edge after this issue counts for it
	}
	c.life.acquire() // the operation's reference
	var err error
	if len(p) == 1 && c.wq.len() == 1 {
		err = c.loop.Poller().Send(c.fd, c.reg.Token(), opSend, p[0])
	} else {
		iov := req.iov[:0]
		for _, b := range p {
			iov = append(iov, iovecOf(b))
		}
		for i := 1; i < c.wq.len() && len(iov) < iovMax; i++ {
			for _, b := range c.wq.at(i).pending() {
				if len(iov) == iovMax {
					break
				}
				iov = append(iov, iovecOf(b))
			}
		}
		req.iov = iov
		// The header and the iovecs live in req, which stays at the front
		// of the queue, reachable, until this send's completion.
		req.msg = unix.Msghdr{Iov: &iov[0]}
		req.msg.SetIovlen(len(iov))
		err = c.loop.Poller().Sendmsg(c.fd, c.reg.Token(), opSend, &req.msg)
	}
	if err != nil {
		panic("sock: queuing a send: " + err.Error())
	}
	c.loop.Kick()
}

// sendDone handles a send's completion. The operation's reference is
// dropped at the end.
func (c *Conn) sendDone(ev *poller.Event) {
	defer c.decref()
	c.wmu.Lock()
	c.winflight = false
	res := ev.Res
	if c.life.closed() {
		// Aborted, or a graceful close's linger expired: the queue is
		// failed at teardown.
		c.wmu.Unlock()
		return
	}
	if res == -int32(unix.EAGAIN) {
		// io_uring retries a send that would block once, after its own
		// poll says writable; on a non-blocking socket a second "would
		// block" (TCP can call a socket writable while its send buffer
		// cannot take the next segment, seen with tiny buffers) comes
		// back as EAGAIN. Queuing the send again at once would spin, as
		// the poll would fire again at once: wait for the next writable
		// edge instead, as the epoll path does.
		if x := c.x.Load(); x != nil && x.edge {
			// An edge came while this send was in flight (the kernel's
			// own retry may have used the room it announced, or not):
			// try again now, or the edge is lost.
			x.edge = false
			c.issueSendLocked()
			c.wmu.Unlock()
			return
		}
		c.env.Counters.SendWaits.Add(1)
		c.writable = false
		c.wmu.Unlock()
		c.awaitWritable()
		return
	}
	if res < 0 {
		c.wmu.Unlock()
		c.fail(os.NewSyscallError("sendmsg", unix.Errno(-res)))
		return
	}
	c.sentLocked(int(res))
	c.sendDoneLocked()
}

// awaitWritable registers the descriptor for writable edges (once; the
// registration lasts until teardown). The first edge may come at once, for
// a socket TCP already calls writable; if the send then meets EAGAIN again,
// the registration stays and the next edge comes only when ACKs free room.
// Runs on the loop.
func (c *Conn) awaitWritable() {
	x := c.extra()
	if x.polled {
		return
	}
	x.polled = true
	if err := c.loop.Poller().Add(c.fd, c.reg.Token(), poller.Writable|poller.EdgeTriggered); err != nil {
		c.fail(err)
	}
}

// writableEdge resumes a send that waited for room (completion mode). An
// edge that comes while a send is in flight is remembered, for that send
// to try again if it meets EAGAIN.
func (c *Conn) writableEdge() {
	c.wmu.Lock()
	switch {
	case c.winflight:
		c.extra().edge = true
	case !c.writable:
		c.writable = true
		c.issueSendLocked()
	}
	c.wmu.Unlock()
}

// cancelOps runs on the loop after the connection closed: it cancels the
// operations still in flight, whose completions then drop their
// references. Taking rmu and wmu orders it after any receive or send
// queued by a holder that had not yet seen the closed bit.
func (c *Conn) cancelOps() {
	c.rmu.Lock()
	c.wmu.Lock()
	busy := c.rinflight || c.winflight
	if busy {
		if err := c.loop.Poller().Cancel(c.fd); err != nil {
			panic("sock: queuing a cancellation: " + err.Error())
		}
	}
	c.wmu.Unlock()
	c.rmu.Unlock()
}

// handleCompletion dispatches a completion of the ring.
func (c *Conn) handleCompletion(ev *poller.Event) {
	switch ev.Op {
	case opRecv:
		c.recvDone(ev)
	case opSend:
		c.sendDone(ev)
	default:
		panic(fmt.Sprintf("sock: completion of unknown operation %d", ev.Op))
	}
}

// clearOp drops what a completed write's sendmsg pointed at.
func (req *writeReq) clearOp() {
	clear(req.iov)
	req.msg = unix.Msghdr{}
}
