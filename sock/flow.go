package sock

// Flow control: a bound on the bytes a connection holds queued for a peer
// that does not read, and the high- and low-water callbacks that let a
// handler stop reading while the queue is high. docs/filters.md gives the
// policy and its reasons.

import (
	"errors"
	"fmt"
)

// DefaultWriteLimit bounds the bytes a connection holds queued for writing
// when neither Env.WriteLimit nor the listener's or connector's options
// say otherwise. It is generous, so that no ordinary bulk write meets it
// by surprise; a server with many untrusted peers sets a smaller one.
const DefaultWriteLimit = 64 << 20

// ErrWriteLimit is matched (errors.Is) by the *WriteLimitError a write
// gets when it would take the connection's queued bytes past its limit.
var ErrWriteLimit = errors.New("sock: write queue limit reached")

// WriteLimitError refuses a write that would take the bytes queued on a
// connection past its limit. Nothing of the write was queued, and the
// connection stays usable: once the peer reads, the same write succeeds.
type WriteLimitError struct {
	Queued int64 // bytes queued when the write came
	Write  int   // bytes in the refused write
	Limit  int64 // the connection's limit
}

func (e *WriteLimitError) Error() string {
	return fmt.Sprintf("sock: write of %d bytes refused: %d bytes already queued for a peer that is not reading, limit %d", e.Write, e.Queued, e.Limit)
}

// Is makes errors.Is(err, ErrWriteLimit) hold.
func (e *WriteLimitError) Is(target error) bool { return target == ErrWriteLimit }

// FlowHandler is implemented by handlers that want to know when a
// connection's write queue runs high. OnWriteQueue(c, true) comes when
// the queued bytes rise past half the write limit, OnWriteQueue(c, false)
// when they fall below a quarter of it. A handler that answers what it
// reads stops issuing reads in between, so a peer that does not read is
// not read from either: its own sends then stall in TCP's flow control,
// and neither side's memory grows.
type FlowHandler interface {
	OnWriteQueue(c *Conn, high bool)
}

// writeLimit is the connection's bound on queued bytes; < 0 means none.
func (c *Conn) writeLimit() int64 {
	if x := c.x.Load(); x != nil && x.limit != 0 {
		return x.limit
	}
	if c.env.WriteLimit != 0 {
		return c.env.WriteLimit
	}
	return DefaultWriteLimit
}

// SetWriteLimit sets the connection's bound on bytes queued for writing
// (see DefaultWriteLimit); n < 0 removes the bound. A write that would
// pass it is refused with a *WriteLimitError.
func (c *Conn) SetWriteLimit(n int64) {
	if n == 0 {
		n = DefaultWriteLimit
	}
	c.wmu.Lock()
	c.extra().limit = n
	c.wmu.Unlock()
}

// QueuedBytes is how many accepted bytes the kernel has not yet taken.
func (c *Conn) QueuedBytes() int64 {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.wq.queuedBytes()
}

// roomLocked reports whether n more bytes fit under the write limit.
// Called with wmu held.
func (c *Conn) roomLocked(n int) bool {
	lim := c.writeLimit()
	return lim < 0 || c.wq.queuedBytes()+int64(n) <= lim
}

// flowLocked notes a crossing of the water marks for a FlowHandler; the
// call itself is made by delivery. Called with wmu held.
func (c *Conn) flowLocked() {
	if !c.onFlow {
		return
	}
	lim := c.writeLimit()
	if lim < 0 {
		lim = DefaultWriteLimit
	}
	q := c.wq
	switch {
	case !q.high && q.bytes > lim/2:
		q.high = true
	case q.high && q.bytes < lim/4:
		q.high = false
	default:
		return
	}
	x := c.extra()
	if q.high {
		x.flowWant.Store(1)
	} else {
		x.flowWant.Store(0)
	}
	c.schedule(schedDeliver)
}

// flowCall returns the water-mark state a FlowHandler has not been told
// yet. Called by delivery with dmu held.
func (c *Conn) flowCallLocked(x *connExtra) (high, ok bool) {
	if x == nil || !c.onFlow {
		return false, false
	}
	want := x.flowWant.Load() == 1
	if want == x.flowTold {
		return false, false
	}
	x.flowTold = want
	return want, true
}
