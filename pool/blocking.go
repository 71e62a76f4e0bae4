package pool

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/panjf2000/ants/v2"

	"github.com/ioreactor/reactor/internal/lock"
)

// DefaultBlockingWorkers is the number of functions a Blocking pool runs at
// once when NewBlocking is given zero or less. The work it is meant for
// waits (on a database, a disk, a peer) rather than computes, so the bound
// is not derived from the number of CPUs: it limits how many slow calls
// are in flight at once, which the services being called care about more
// than the CPUs do.
const DefaultBlockingWorkers = 64

// DefaultBlockingQueue is the number of functions a Blocking pool lets wait
// for a worker when NewBlocking is given a maxQueued of zero. It absorbs a
// burst from many connections at once, yet a stuck backend shows up as
// ErrBlockingFull after at most half a megabyte of queue rather than as
// unbounded memory growth.
const DefaultBlockingQueue = 1 << 16

// minReleaseWait is the least time Stop gives the worker goroutines to exit
// once all work has finished, whatever is left of its timeout. They have
// nothing left to run, so they exit as soon as the scheduler runs them;
// the floor keeps Stop(0) on an idle pool from failing only because the
// timeout was used up before they got the chance.
const minReleaseWait = 100 * time.Millisecond

// Blocking is a bounded pool for work that would block an I/O thread:
// database calls, file reads, TLS handshakes. An I/O thread hands such a
// function to Submit, which never waits for a worker, and carries on with
// its events; the function runs on one of the pool's goroutines. Create a
// Blocking with NewBlocking; the zero value is not usable. All methods are
// safe for concurrent use, and a running function may Submit more work.
//
// At most Workers functions run at once. A function submitted while all
// of them are busy waits in the pool's own FIFO queue, so queued functions
// start in the order they were submitted; with one worker, functions run
// one at a time in submission order. The pool only runs functions:
// delivering their results, in order, to a connection is the caller's job.
//
// A panic in a function is recovered and counted in Stats().Panics, and
// the worker goes on with the queue. This is a last line of defence that
// keeps a bug in one request from killing the process or a worker; a
// caller that wants to report panics wraps its functions itself.
//
// The worker goroutines come from an ants pool
// (github.com/panjf2000/ants/v2), which keeps them alive between bursts
// instead of starting a goroutine per function, and retires those left
// idle for about a second. The pool and its housekeeping goroutines live
// until Stop.
type Blocking struct {
	// The bound is kept here, not by ants: running counts the worker
	// loops, each holding one of the workers slots, and it changes only
	// under mu together with the queue. A loop gives its slot back only
	// after finding the queue empty under mu, and Submit queues only after
	// finding every slot taken under mu, so whenever the queue is not
	// empty there are workers loops that will each look at it again
	// before they exit: no function can be left behind in the queue.
	workers   int
	maxQueued int // negative: no limit
	ants      *ants.PoolWithFuncGeneric[func()]

	mu         lock.Mutex[blockingMu]
	running    int
	queue      fnQueue
	parked     int             // functions inside Park, holding no slot (resuming ones included)
	resumers   []chan struct{} // parked functions waiting for a slot back, oldest first
	peakQueued int
	completed  uint64
	panics     uint64
	stopped    bool
	idleClosed bool
	idle       chan struct{} // closed once stopped with no loop left

	releaseOnce sync.Once
}

// blockingMu is the lock class of Blocking.mu (internal/lock).
type blockingMu struct{}

// BlockingStats counts a Blocking pool's work.
type BlockingStats struct {
	Workers    int    // most functions run at once: the bound the pool was made with
	Running    int    // functions running now; a worker between two functions counts
	Queued     int    // functions waiting for a worker now
	Parked     int    // functions inside Park now: waiting, and holding no worker
	PeakQueued int    // highest Queued seen
	Completed  uint64 // functions finished: returned, panicked or ended by runtime.Goexit
	Panics     uint64 // functions that panicked; the panics were recovered
}

// NewBlocking returns a pool that runs at most workers functions at once
// and lets at most maxQueued more wait for a worker.
//
// A workers of zero or less means DefaultBlockingWorkers. A maxQueued of
// zero means DefaultBlockingQueue, and a negative maxQueued means no
// limit: Submit then never returns ErrBlockingFull, and a backend that
// stops answering makes the queue grow without bound.
//
// An error means the ants pool could not be created; no goroutine is left
// running then.
func NewBlocking(workers, maxQueued int) (*Blocking, error) {
	if workers <= 0 {
		workers = DefaultBlockingWorkers
	}
	if maxQueued == 0 {
		maxQueued = DefaultBlockingQueue
	}
	b := &Blocking{workers: workers, maxQueued: maxQueued, idle: make(chan struct{})}

	// Handing a function to ants must not wait, so ants runs in
	// nonblocking mode, and it needs capacity above workers. When a loop
	// gives its slot back and returns, the ants goroutine that ran it is
	// not idle again until ants has put it back on its free list a moment
	// later; a Submit that takes the slot in between finds that goroutine
	// still busy. With a capacity of exactly workers that Submit would get
	// ants.ErrPoolOverload (in this package's stress tests under the race
	// detector, about one start in sixteen did), and ants' blocking mode
	// would make it wait for the other goroutine to be scheduled, which is
	// usually a fraction of a microsecond but under CPU load can be a
	// whole scheduling quantum of milliseconds: too long for an I/O
	// thread. Twice workers leaves
	// room for workers such lagging goroutines at once, more than the
	// scheduler realistically leaves behind; should ants still refuse (or
	// refuse because a timed-out Stop has released it), start runs the
	// loop on a goroutine of its own, so a function is never refused or
	// stranded because of ants and the bound, which is ours, still holds.
	p, err := ants.NewPoolWithFuncGeneric(min(workers, math.MaxInt32/2)*2, b.work, ants.WithNonblocking(true))
	if err != nil {
		return nil, fmt.Errorf("pool: NewBlocking: %w", err)
	}
	b.ants = p
	return b, nil
}

// Submit arranges for fn to run on one of the pool's workers and returns
// without waiting for it, whether or not a worker is free: it holds the
// pool's lock only for a few instructions (and, now and then, while the
// queue's buffer doubles), so it may be called from an I/O thread. If every worker is busy, fn waits in the queue behind the
// functions submitted before it.
//
// A nil error means fn will run, even if Stop is called, or times out,
// before it starts. Submit returns ErrBlockingFull if the queue already
// holds maxQueued functions, and ErrBlockingStopped once Stop has been
// called; fn will not run then. It panics if fn is nil, which is a bug in the caller that is
// better reported here than as a recovered panic on a worker later.
func (b *Blocking) Submit(fn func()) error {
	if fn == nil {
		panic("pool: Submit of a nil function")
	}
	b.mu.Lock()
	switch {
	case b.stopped:
		b.mu.Unlock()
		return ErrBlockingStopped
	case b.running < b.workers:
		b.running++
		b.mu.Unlock()
		b.start(fn)
		return nil
	case b.maxQueued >= 0 && b.queue.n >= b.maxQueued:
		b.mu.Unlock()
		return ErrBlockingFull
	}
	b.queue.push(fn)
	if b.queue.n > b.peakQueued {
		b.peakQueued = b.queue.n
	}
	b.mu.Unlock()
	return nil
}

// start runs a new worker loop, which holds a slot already, beginning
// with fn. See NewBlocking for why ants may refuse and why a goroutine of
// its own is then the right answer. (With GOMAXPROCS=1 ants hands fn over
// on an unbuffered channel, so Invoke waits for the worker goroutine to be
// scheduled; with a single P the caller could not run alongside it
// anyway.)
func (b *Blocking) start(fn func()) {
	if b.ants.Invoke(fn) != nil {
		go b.work(fn)
	}
}

// work is a worker loop: it runs fn, then functions from the queue until
// the queue is empty, and then gives its slot back (in finish).
func (b *Blocking) work(fn func()) {
	goexit := true
	defer func() {
		if !goexit {
			return
		}
		// A function called runtime.Goexit, which nothing can stop:
		// this goroutine is ending, and the loop must not end with it,
		// or the slot it holds would be lost and the queue behind it
		// stranded. Count the function and carry on elsewhere.
		if next := b.finish(false); next != nil {
			go b.work(next)
		}
	}()
	for fn != nil {
		fn = b.finish(call(fn))
	}
	goexit = false
}

// call runs fn and reports whether it panicked; the panic is recovered.
// It does not return if fn calls runtime.Goexit.
func call(fn func()) (panicked bool) {
	panicked = true
	defer func() {
		if panicked {
			// Not the value: recover stops the panic whatever it
			// was, even panic(nil) under GODEBUG=panicnil=1.
			recover()
		}
	}()
	fn()
	return false
}

// finish counts a finished function and returns the next one from the
// queue, or, if the queue is empty, gives the caller's slot back and
// returns nil.
func (b *Blocking) finish(panicked bool) func() {
	b.mu.Lock()
	b.completed++
	if panicked {
		b.panics++
	}
	next := b.handOff()
	b.mu.Unlock()
	return next
}

// handOff passes on a slot its holder no longer needs: to the parked
// function that has waited longest to resume (handOff returns nil, the
// slot is that function's now), or else to the first function in the
// queue (handOff returns it, for the caller to run in the slot), or else
// back to the pool. Call it with mu held.
//
// Parked functions go first because each is work already under way,
// holding memory (a TLS handshake, its buffers), and finishing it frees
// that sooner than starting more would.
func (b *Blocking) handOff() func() {
	if len(b.resumers) > 0 {
		ch := b.resumers[0]
		b.resumers[0] = nil
		b.resumers = b.resumers[1:]
		b.parked--
		close(ch)
		return nil
	}
	if next := b.queue.pop(); next != nil {
		return next
	}
	b.running--
	if b.stopped && b.running == 0 && b.parked == 0 {
		b.closeIdle()
	}
	return nil
}

// Park runs wait with the calling function's worker given back to the
// pool: while wait blocks, another function can run in its place. When
// wait returns, Park waits for a worker again (ahead of the queue: see
// handOff) and then returns, so the function goes on within the bound.
// Use it around a wait whose end is up to someone else, a peer that may
// never answer, so that such waits cannot occupy every worker and starve
// the functions queued behind them; the TLS handshake waits for the
// peer's bytes this way (docs/filters.md). Parked functions count in
// Stats().Parked, not in Running, and Stop waits for them as for the rest.
//
// Park must be called by a function the pool is running, on that
// function's own goroutine, and with no lock held that the function that
// takes its worker could need. If wait panics, Park still takes a worker
// back before the panic goes on to the pool, which recovers it.
func (b *Blocking) Park(wait func()) {
	b.mu.Lock()
	b.parked++
	next := b.handOff()
	b.mu.Unlock()
	if next != nil {
		b.start(next)
	}
	defer b.resume()
	wait()
}

// resume takes a worker back for a parked function: at once if one is
// free, or else in turn, from the function that gives one up next.
func (b *Blocking) resume() {
	b.mu.Lock()
	if b.running < b.workers {
		// A slot is free, so nothing waits for one: the queue and the
		// resumers fill only while every slot is taken.
		b.running++
		b.parked--
		b.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	b.resumers = append(b.resumers, ch)
	b.mu.Unlock()
	<-ch // handOff has made the slot ours
}

// closeIdle wakes Stop: the pool is stopped and no loop is left. Call it
// with mu held.
func (b *Blocking) closeIdle() {
	if !b.idleClosed {
		b.idleClosed = true
		close(b.idle)
	}
}

// Stop makes the pool refuse new work, with ErrBlockingStopped, and waits
// up to timeout for the functions running and queued to finish. Then it
// releases the worker goroutines and, if all work finished, waits for
// them to exit, for what is left of timeout but at least a tenth of a
// second, since they have nothing left to run.
//
// If work is left at the timeout, Stop returns an error that says how many
// functions were still running and how many still queued; it wraps
// context.DeadlineExceeded. That work is not abandoned: a function Submit
// accepted always runs, so whoever waits for its result is not left
// waiting. The workers still busy go on through the queue and their
// goroutines exit when it is empty. Stop may be called again, and from
// several goroutines: every call waits, up to its own timeout, for the
// work still left.
func (b *Blocking) Stop(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	b.mu.Lock()
	b.stopped = true
	if b.running == 0 && b.parked == 0 {
		b.closeIdle()
	}
	b.mu.Unlock()

	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-b.idle:
	case <-t.C:
	}

	// Decide on the state now rather than on which case fired: the
	// last function may have finished just as the timer did.
	b.mu.Lock()
	running, queued, parked := b.running, b.queue.n, b.parked
	b.mu.Unlock()
	if running > 0 || parked > 0 {
		// Release does not wait: the busy ants workers exit when their
		// loops have emptied the queue, and nothing else needs one.
		b.releaseOnce.Do(b.ants.Release)
		return fmt.Errorf("pool: blocking pool Stop timed out after %v with work left, which will still run: %d running, %d queued, %d parked: %w",
			timeout, running, queued, parked, context.DeadlineExceeded)
	}
	var err error
	b.releaseOnce.Do(func() {
		wait := max(time.Until(deadline), minReleaseWait)
		if rerr := b.ants.ReleaseTimeout(wait); rerr != nil {
			err = fmt.Errorf("pool: blocking pool Stop: all work finished, but the worker goroutines had not exited after %v: %w", wait, rerr)
		}
	})
	return err
}

// Stats returns the pool's counters, read together under its lock.
func (b *Blocking) Stats() BlockingStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BlockingStats{
		Workers:    b.workers,
		Running:    b.running,
		Queued:     b.queue.n,
		Parked:     b.parked,
		PeakQueued: b.peakQueued,
		Completed:  b.completed,
		Panics:     b.panics,
	}
}

// Queue buffers at most keepQueueBuf entries survive the queue running
// empty. Up to that size a queue that fills and drains over and over never
// allocates; a larger buffer, left by an exceptional burst, is given back
// to the heap rather than kept for good, at the price of growing it again
// (a few allocations per burst, not per function) if the burst recurs.
const (
	minQueueBuf  = 16
	keepQueueBuf = 4096
)

// fnQueue is a FIFO of functions in a ring buffer whose length is a power
// of two, so that pushing and popping allocate nothing once the buffer
// has grown to the queue's working size. The zero value is an empty queue.
type fnQueue struct {
	buf  []func()
	head int // index of the oldest function
	n    int // functions in the queue
}

// push adds fn at the back, growing the buffer if it is full.
func (q *fnQueue) push(fn func()) {
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = fn
	q.n++
}

// pop removes and returns the function at the front, or nil if the queue
// is empty. Its slot is cleared so the buffer does not keep the function's
// closure alive.
func (q *fnQueue) pop() func() {
	if q.n == 0 {
		return nil
	}
	fn := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	if q.n == 0 {
		q.head = 0
		if len(q.buf) > keepQueueBuf {
			q.buf = nil
		}
	}
	return fn
}

// grow doubles the buffer of a full queue, moving the functions to the
// front of the new one in order.
func (q *fnQueue) grow() {
	buf := make([]func(), max(2*len(q.buf), minQueueBuf))
	k := copy(buf, q.buf[q.head:])
	copy(buf[k:], q.buf[:q.head])
	q.buf, q.head = buf, 0
}
