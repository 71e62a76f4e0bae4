package sock

// Blocking work handed off by a connection: it runs on the engine's
// blocking-work pool, never on an I/O thread, and its result comes back to
// the connection's delivery, in the order the work was submitted.

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/ioreactor/reactor/internal/lock"
	"github.com/ioreactor/reactor/pool"
	"github.com/ioreactor/reactor/seq"
)

// blockingPools are an Env's two blocking-work pools, made on first use
// so that an engine that never blocks starts no goroutine for them.
type blockingPools struct {
	mu               lock.Mutex[blockingPoolsMu]
	work, handshakes *pool.Blocking
	stopped          bool
}

// blockingPoolsMu is the lock class of blockingPools.mu (internal/lock).
type blockingPoolsMu struct{}

// ErrPoolStopped is returned by Submit once the engine is shutting down.
var ErrPoolStopped = errors.New("sock: the blocking-work pools are stopped")

func (e *Env) blockingPool(handshakes bool) (*pool.Blocking, error) {
	ps := &e.pools
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.stopped {
		return nil, ErrPoolStopped
	}
	p, workers, queue := &ps.work, e.BlockingWorkers, e.BlockingQueue
	if handshakes {
		p, workers = &ps.handshakes, e.HandshakeWorkers
	}
	if *p == nil {
		b, err := pool.NewBlocking(workers, queue)
		if err != nil {
			return nil, fmt.Errorf("sock: blocking-work pool: %w", err)
		}
		*p = b
	}
	return *p, nil
}

// StopBlocking stops the blocking-work pools, waiting up to timeout for
// work still running. Call it after every connection has closed (each
// waits for its own work) and before the group stops (results are
// delivered on its loops).
func (e *Env) StopBlocking(timeout time.Duration) error {
	ps := &e.pools
	ps.mu.Lock()
	ps.stopped = true
	w, h := ps.work, ps.handshakes
	ps.mu.Unlock()
	var errs []error
	for _, p := range []*pool.Blocking{w, h} {
		if p != nil {
			errs = append(errs, p.Stop(timeout))
		}
	}
	return errors.Join(errs...)
}

// BlockingStats returns the two pools' counters (zero for one not made).
func (e *Env) BlockingStats() (work, handshakes pool.BlockingStats) {
	ps := &e.pools
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.work != nil {
		work = ps.work.Stats()
	}
	if ps.handshakes != nil {
		handshakes = ps.handshakes.Stats()
	}
	return work, handshakes
}

// Submit runs work on the engine's blocking-work pool and then done with
// its result on the connection's I/O side, like any callback: never on
// the worker, never at the same time as another callback of c. The dones
// of one connection run in the order their work was submitted, however
// the work finishes. Every accepted submission gets its done, before
// OnClose (a connection waits for its work to finish before it closes,
// so done may find c closed). A panic in work closes c with a
// *PanicError, and its done is not called.
//
// Submit never blocks: when every worker is busy the work queues, and
// past the pool's queue bound it is refused (pool.ErrBlockingFull).
func Submit[T any](c *Conn, work func() T, done func(c *Conn, v T)) error {
	return submitOn(c, false, work, done)
}

func submitOn[T any](c *Conn, handshakes bool, work func() T, done func(c *Conn, v T)) error {
	p, err := c.env.blockingPool(handshakes)
	if err != nil {
		return err
	}
	if !c.life.incref() {
		return ErrClosed
	}
	x := c.extra()
	x.bmu.Lock()
	s := x.bgen.Next()
	err = p.Submit(func() {
		var v T
		ok := false
		func() {
			defer func() {
				if r := recover(); r != nil {
					c.env.Counters.Panics.Add(1)
					c.fail(&PanicError{Value: r, Stack: debug.Stack()})
				}
			}()
			v = work()
			ok = true
		}()
		f := func() {}
		if ok {
			f = func() { done(c, v) }
		}
		c.dmu.Lock()
		if err := x.results.Put(s, f); err != nil {
			c.dmu.Unlock()
			panic("sock: blocking result out of range: " + err.Error())
		}
		c.dmu.Unlock()
		// The submission's reference rides on this task, which delivers
		// and then drops it: a closed connection still gets its result.
		c.loop.Post(resultTask{c})
	})
	if err != nil {
		// Nothing will carry stamp s: hand it to the next submission.
		x.bgen = seq.NewGenerator(s)
		x.bmu.Unlock()
		c.decref()
		return err
	}
	x.bmu.Unlock()
	return nil
}

// resultTask delivers a connection's blocking results on its loop and
// drops the reference the submission held.
type resultTask struct{ c *Conn }

func (t resultTask) RunTask(*pool.Loop) {
	t.c.deliver()
	t.c.decref()
}
