package sock

// Delivery: completed reads and writes reach the user's callbacks in
// issue order, one callback of a connection at a time, and a panic in one
// closes that connection alone.

import (
	"io"
	"runtime/debug"
	"sync"

	"github.com/ioreactor/reactor/pool"
	"github.com/ioreactor/reactor/seq"
)

// readDone is a performed read: a filled buffer, or end of stream (a
// read that fails closes the connection instead of completing).
type readDone struct {
	b   *pool.Buffer
	eof bool
}

// completeRead hands a performed read to the in-order list and delivers
// what is ready.
func (c *Conn) completeRead(s seq.Number, d readDone) {
	c.dmu.Lock()
	if s != c.rdone.Expected() {
		c.env.Counters.ReadsReordered.Add(1)
	}
	if err := c.rdone.Put(s, d); err != nil {
		c.dmu.Unlock()
		panic("sock: read completion out of range: " + err.Error())
	}
	c.deliverLocked()
}

// readPacket is a performed read on its way to completion on another
// thread (shared mode). It holds a reference to its connection.
type readPacket struct {
	c *Conn
	s seq.Number
	d readDone
}

var readPackets = sync.Pool{New: func() any { return new(readPacket) }}

// postRead queues a performed read for completion by any thread of the
// connection's loop.
func (c *Conn) postRead(s seq.Number, d readDone) {
	if !c.life.incref() { // closed meanwhile: nobody will deliver it
		d.release()
		c.rout.Add(-1)
		return
	}
	p := readPackets.Get().(*readPacket)
	p.c, p.s, p.d = c, s, d
	c.loop.Post(p)
}

// RunTask implements pool.Task: complete the read, then drop the packet's
// reference.
func (p *readPacket) RunTask(*pool.Loop) {
	c, s, d := p.c, p.s, p.d
	*p = readPacket{}
	readPackets.Put(p)
	c.completeRead(s, d)
	c.decref()
}

// deliver runs the completions that are ready, in order, unless another
// thread is already delivering (it will pick them up before it stops).
func (c *Conn) deliver() {
	c.dmu.Lock()
	c.deliverLocked()
}

// deliverLocked is deliver for a caller that holds dmu; it returns with
// dmu released.
func (c *Conn) deliverLocked() {
	if c.delivering {
		c.dmu.Unlock()
		return
	}
	c.delivering = true
	for {
		if d, ok := c.rdone.Pop(); ok {
			c.dmu.Unlock()
			c.rout.Add(-1)
			if c.life.closed() {
				d.release()
			} else {
				c.callRead(d)
			}
			c.dmu.Lock()
			continue
		}
		if !c.wdone.empty() {
			d := c.wdone.pop()
			c.dmu.Unlock()
			c.callWrite(d)
			c.dmu.Lock()
			continue
		}
		if x := c.x.Load(); x != nil {
			if f, ok := x.results.Pop(); ok {
				// Results of blocking work are delivered even after
				// close, so that each can release what it holds.
				c.dmu.Unlock()
				c.callResult(f)
				c.dmu.Lock()
				continue
			}
			if high, ok := c.flowCallLocked(x); ok {
				c.dmu.Unlock()
				c.callFlow(high)
				c.dmu.Lock()
				continue
			}
		}
		if ch := c.filters(); ch != nil && ch.readyLocked() {
			ch.stepLocked()
			c.dmu.Lock()
			continue
		}
		break
	}
	c.delivering = false
	c.dmu.Unlock()
}

func (d readDone) release() {
	if d.b != nil {
		d.b.Release()
	}
}

// The call* functions run one user callback each and turn a panic into
// the connection's close reason.

func (c *Conn) recoverCallback() {
	if r := recover(); r != nil {
		c.env.Counters.Panics.Add(1)
		c.fail(&PanicError{Value: r, Stack: debug.Stack()})
	}
}

func (c *Conn) callOpen() {
	defer c.recoverCallback()
	c.h.OnOpen(c)
}

func (c *Conn) callRead(d readDone) {
	defer c.recoverCallback()
	var err error
	if d.eof {
		err = io.EOF
	}
	c.h.OnRead(c, d.b, err)
}

func (c *Conn) callWrite(d writeDone) {
	defer c.recoverCallback()
	c.h.(WriteHandler).OnWrite(c, d.s, d.n, d.err)
}

func (c *Conn) callResult(f func()) {
	defer c.recoverCallback()
	f()
}

func (c *Conn) callFlow(high bool) {
	defer c.recoverCallback()
	if !c.life.closed() {
		c.h.(FlowHandler).OnWriteQueue(c, high)
	}
}

func (c *Conn) callClose(err error) {
	defer func() {
		if r := recover(); r != nil {
			c.env.Counters.Panics.Add(1)
		}
	}()
	c.h.OnClose(c, err)
}

// commitChain records n bytes read into the chain at b and releases the
// buffers the read did not reach.
func commitChain(b *pool.Buffer, n int) *pool.Buffer {
	x := b
	for {
		k := min(n, x.Cap()-x.Len())
		x.Commit(k)
		n -= k
		if n == 0 || x.Next() == nil {
			break
		}
		x = x.Next()
	}
	if rest := x.Next(); rest != nil {
		x.SetNext(nil)
		rest.Release()
	}
	return b
}
