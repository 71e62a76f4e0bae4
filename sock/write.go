package sock

// The write path: accepting writes, queueing them, recording what the
// kernel took, and their completions. The system calls are in
// conn_linux.go, ring_linux.go and iocp_windows.go.

import (
	"slices"
	"sync"
	"time"

	"github.com/ioreactor/reactor/pool"
	"github.com/ioreactor/reactor/seq"
)

type writeDone struct {
	s   seq.Number
	n   int
	err error
}

// writeReq is one accepted write: its stamp, the slices not yet taken by
// the kernel, and the pooled chain to release once it is done.
type writeReq struct {
	s     seq.Number
	bufs  [][]byte // bufs[bi:] are not yet taken
	bi    int
	owned *pool.Buffer
	n     int // bytes taken so far
	left  int // bytes not yet taken
	iov   iovecs
	msg   msghdr // the header of a queued sendmsg (completion mode)
}

var writeReqs = sync.Pool{New: func() any { return new(writeReq) }}

// Write accepts bufs as one write: their bytes reach the wire contiguous,
// after every write accepted before and before every write accepted after,
// whichever goroutines call Write. The slices stay the caller's but must
// not be modified until the write completes (OnWrite, for a WriteHandler).
// It returns the write's stamp.
func (c *Conn) Write(bufs ...[]byte) (seq.Number, error) {
	req := writeReqs.Get().(*writeReq)
	req.bufs = slices.Grow(req.bufs, len(bufs))
	for _, b := range bufs {
		if len(b) > 0 {
			req.bufs = append(req.bufs, b)
			req.left += len(b)
		}
	}
	return c.write(req)
}

// WriteBuffer is Write for a chain of pooled buffers. The connection takes
// ownership of the chain and releases it when the write completes or
// fails, including when WriteBuffer returns an error.
func (c *Conn) WriteBuffer(b *pool.Buffer) (seq.Number, error) {
	req := writeReqs.Get().(*writeReq)
	req.owned = b
	for x := b; x != nil; x = x.Next() {
		if x.Len() > 0 {
			req.bufs = append(req.bufs, x.Bytes())
			req.left += x.Len()
		}
	}
	return c.write(req)
}

func (c *Conn) write(req *writeReq) (seq.Number, error) {
	if ch := c.filters(); ch != nil {
		return ch.write(req)
	}
	return c.writeRaw(req, false)
}

// writeRaw accepts req below any filter. A write from a filter chain is
// forced past the write limit: the chain checked the limit on the
// plaintext before a filter changed it, and a TLS record, once made, must
// go out or the stream breaks.
func (c *Conn) writeRaw(req *writeReq, forced bool) (seq.Number, error) {
	if !c.life.incref() {
		req.free()
		return 0, ErrClosed
	}
	defer c.decref()
	c.wmu.Lock()
	if c.wshut || c.state == stateConnecting {
		err := ErrClosed
		if !c.wshut {
			err = ErrNotConnected
		}
		c.wmu.Unlock()
		req.free()
		return 0, err
	}
	if !forced && !c.roomLocked(req.left) {
		queued := c.wq.queuedBytes()
		c.wmu.Unlock()
		n := req.left
		req.free()
		return 0, &WriteLimitError{Queued: queued, Write: n, Limit: c.writeLimit()}
	}
	req.s = c.wgen.Next()
	s := req.s
	c.enqueueLocked(req)
	c.wmu.Unlock()
	return s, nil
}

// completeWriteLocked records a finished write for delivery. Called with
// wmu held; takes dmu.
func (c *Conn) completeWriteLocked(req *writeReq, err error) {
	if c.onWrite {
		c.dmu.Lock()
		if c.wdone == nil {
			c.wdone = new(fifo[writeDone])
		}
		c.wdone.push(writeDone{s: req.s, n: req.n, err: err})
		c.dmu.Unlock()
	}
	req.free()
}

func (c *Conn) queueEmptyLocked() bool { return c.wq.empty() }

// writeQueue is a connection's queue of accepted writes with the count of
// their bytes the kernel has not taken yet, which the write limit bounds.
type writeQueue struct {
	fifo[*writeReq]
	bytes int64
	// high: the bytes rose past the high-water mark and have not yet
	// fallen below the low-water mark (FlowHandler).
	high bool
}

func (q *writeQueue) empty() bool { return q == nil || q.fifo.empty() }

func (q *writeQueue) len() int {
	if q == nil {
		return 0
	}
	return q.fifo.len()
}

func (q *writeQueue) queuedBytes() int64 {
	if q == nil {
		return 0
	}
	return q.bytes
}

func (c *Conn) pushLocked(req *writeReq) {
	if x := c.x.Load(); x != nil && x.writeTimeout > 0 {
		if c.queueEmptyLocked() {
			x.wprogress = time.Now() // the wait starts now
		}
		if !x.armed {
			x.armed = true
			c.loop.ArmTimer(&x.writeTimer, x.writeTimeout)
		}
	}
	if c.wq == nil {
		c.wq = writeQueues.Get().(*writeQueue)
	}
	c.wq.push(req)
	c.wq.bytes += int64(req.left)
	c.flowLocked()
}

// takenLocked records that the kernel took n bytes of queued writes.
func (c *Conn) takenLocked(n int) {
	c.wq.bytes -= int64(n)
	c.flowLocked()
	if x := c.x.Load(); n > 0 && x != nil && x.writeTimeout > 0 {
		x.wprogress = time.Now()
	}
}

func (c *Conn) popLocked() {
	c.wq.pop()
	c.wqLen.Add(-1)
	if q := c.wq; q.empty() && q.bytes == 0 && !q.high {
		c.wq = nil
		q.items, q.head = q.items[:0], 0
		writeQueues.Put(q)
	}
}

// writeQueues holds emptied write queues. On io_uring every write queues
// (the send completes later), so keeping its queue cost each connection
// that ever wrote 56 bytes for good: 0.05 of the 0.4 KiB budget per idle
// connection (measured: 0.39–0.43 KiB before, 0.36 after, 10,000 idle
// connections). Taking and returning one costs a busy connection about
// 1% of its CPU per ping-pong message, within the noise of 9 side-by-side
// runs (docs/performance.md).
var writeQueues = sync.Pool{New: func() any { return new(writeQueue) }}

// advance records that the kernel took n more bytes of req.
func (req *writeReq) advance(n int) {
	req.n += n
	req.left -= n
	for n > 0 {
		b := req.bufs[req.bi]
		if n >= len(b) {
			n -= len(b)
			req.bufs[req.bi] = nil
			req.bi++
			continue
		}
		req.bufs[req.bi] = b[n:]
		n = 0
	}
}

// pending is the slices not yet taken by the kernel.
func (req *writeReq) pending() [][]byte { return req.bufs[req.bi:] }

// free returns req to its pool, releasing its owned chain.
func (req *writeReq) free() {
	if req.owned != nil {
		req.owned.Release()
		req.owned = nil
	}
	clear(req.bufs)
	req.bufs = req.bufs[:0]
	req.bi, req.n, req.left = 0, 0, 0
	writeReqs.Put(req)
}

// enqueueOpLocked accepts req in completion mode (io_uring, IOCP): it
// joins the queue and a send starts unless one is in flight. A write of
// no bytes completes at once, as a write the kernel took whole would.
// Called with wmu held.
func (c *Conn) enqueueOpLocked(req *writeReq) {
	c.wqLen.Add(1)
	if req.left == 0 && c.queueEmptyLocked() {
		c.wqLen.Add(-1)
		c.completeWriteLocked(req, nil)
		if c.onWrite {
			c.schedule(schedDeliver)
		}
		return
	}
	c.pushLocked(req)
	c.issueSendLocked()
}

// sentLocked records that a send took n bytes: they belong to the queued
// writes in order, and every write they finish completes. Called with wmu
// held.
func (c *Conn) sentLocked(n int) {
	c.env.addOut(c.loop, n)
	for n > 0 || !c.queueEmptyLocked() && c.wq.front().left == 0 {
		req := c.wq.front()
		k := min(n, req.left)
		req.advance(k)
		c.takenLocked(k)
		n -= k
		if req.left > 0 {
			break
		}
		c.popLocked()
		req.clearOp()
		c.recycleOwnedLocked(req)
		c.completeWriteLocked(req, nil)
	}
}

// drainedLocked runs when the write queue may have emptied: a pending
// CloseWrite shuts the write side down, and it reports whether a graceful
// Close now closes. Called with wmu held; on error wmu is unlocked and the
// connection failed.
func (c *Conn) drainedLocked() (closeNow bool, ok bool) {
	if !c.queueEmptyLocked() {
		return false, true
	}
	if c.shutAfterFlush {
		c.shutAfterFlush = false
		if err := c.shutdownWriteLocked(); err != nil {
			c.wmu.Unlock()
			c.fail(err)
			return false, false
		}
	}
	return c.state == stateClosing, true
}

// sendDoneLocked finishes a completed send (completion mode): the next
// send starts, a drained queue lets CloseWrite or Close proceed, and
// write completions are delivered. Called with wmu held; returns with it
// released.
func (c *Conn) sendDoneLocked() {
	c.issueSendLocked()
	closeNow, ok := c.drainedLocked()
	if !ok {
		return
	}
	c.wmu.Unlock()
	if c.onWrite {
		c.deliver()
	}
	if closeNow {
		c.closeWith(nil, false)
	}
}
