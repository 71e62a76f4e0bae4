package sock

// The read-timeout filter: it closes a connection on which nothing has
// arrived for a set time, or asks the handler whether to.

import (
	"sync/atomic"
	"time"

	"github.com/ioreactor/reactor/pool"
)

// readTimeout re-arms lazily: an arrival only records its time (one clock
// read), and the timer, when it fires early for that reason, is armed
// again for what is left. So a busy connection costs no timer operation
// per read, and the filter fires no earlier than d after the last arrival.
//
// Its fields are touched only inside delivery (inbound calls and Timer)
// or under the chain's wmu (Close), never both at once: Close only stops
// the timer, which is safe from any goroutine.
type readTimeout struct {
	PassFilter
	d      time.Duration
	decide func(*Conn) bool
	last   time.Time // the last arrival (monotonic clock)
	done   bool      // the peer shut its side: no read can complete
	// closing is set by Close (writer's goroutine) and read by Timer
	// (delivery), so a timer that fired as Close stopped it does nothing.
	closing atomic.Bool
}

func (f *readTimeout) Open(l *Layer) {
	f.last = time.Now()
	l.ArmTimer(f.d)
	l.PassOpen()
}

func (f *readTimeout) Read(l *Layer, b *pool.Buffer) {
	f.last = time.Now()
	l.PassRead(b)
}

// EOF stops the timer: no read can complete after it, so waiting for one
// would only close a half-closed connection that is still writing.
func (f *readTimeout) EOF(l *Layer) {
	f.done = true
	l.StopTimer()
	l.PassEOF()
}

func (f *readTimeout) Timer(l *Layer) {
	if f.done || f.closing.Load() {
		return
	}
	if idle := time.Since(f.last); idle < f.d {
		l.ArmTimer(f.d - idle)
		return
	}
	c := l.Conn()
	if f.decide != nil && f.decide(c) {
		f.last = time.Now()
		l.ArmTimer(f.d)
		return
	}
	c.env.Counters.ReadTimeouts.Add(1)
	l.Fail(ErrReadTimeout)
}

// Close stops the timer at once: a connection that is closing by choice
// is not timed out while it flushes.
func (f *readTimeout) Close(l *Layer) {
	f.closing.Store(true)
	l.StopTimer()
	l.PassClose()
}
