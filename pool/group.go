// Package pool holds the engine's machinery that is the same on every
// platform: the fixed group of I/O threads and their loops, the token
// table that maps poller events back to their owners, timers, and the
// pooled buffers. It uses no unsafe code and makes no system calls of its
// own; the platform poller does that.
package pool

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ioreactor/reactor/poller"
)

// Config sizes a Group.
type Config struct {
	// Threads is the number of I/O threads; 0 means one per CPU
	// (runtime.GOMAXPROCS).
	Threads int
	// Shared makes every thread wait on one poller instead of one each.
	Shared bool
	// Balancer assigns new registrations to loops; nil means RoundRobin.
	Balancer Balancer
	// EventBatch is how many events one Wait may return; 0 means 256.
	EventBatch int
	// BusyPoll, when positive, makes an idle thread poll without blocking
	// for this long before it sleeps in the poller: it trades CPU for the
	// latency of a sleep and a wake-up.
	BusyPoll time.Duration
}

// Balancer picks the loop for a new registration. Pick is called from any
// goroutine and must be safe for concurrent use.
type Balancer interface {
	Pick(loops []*Loop) *Loop
}

// RoundRobin hands loops out in turn. The zero value is ready to use.
type RoundRobin struct{ n atomic.Uint64 }

// Pick implements Balancer.
func (r *RoundRobin) Pick(loops []*Loop) *Loop {
	return loops[(r.n.Add(1)-1)%uint64(len(loops))]
}

// LeastLoaded picks the loop with the fewest registrations.
type LeastLoaded struct{}

// Pick implements Balancer.
func (LeastLoaded) Pick(loops []*Loop) *Loop {
	best := loops[0]
	for _, l := range loops[1:] {
		if l.Load() < best.Load() {
			best = l
		}
	}
	return best
}

// ThreadStats counts one I/O thread's work.
type ThreadStats struct {
	Loop   int    // the loop the thread waits on
	Events uint64 // events dispatched to their owners
	Stale  uint64 // events dropped because their token was stale
	Tasks  uint64 // posted tasks run
	Timers uint64 // timers fired
	Waits  uint64 // calls into the poller
}

type thread struct {
	loop                                *Loop
	events, stale, tasks, timers, waits atomic.Uint64
}

// Group is the fixed set of I/O threads. Each thread is a goroutine locked
// to its OS thread, so a callback that blocks the thread cannot migrate
// other work onto it and thread-local OS state stays put.
type Group struct {
	loops    []*Loop
	threads  []*thread
	table    Table
	balancer Balancer
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// NewGroup creates the loops with newPoller and starts the threads.
func NewGroup(cfg Config, newPoller func() (*poller.Poller, error)) (*Group, error) {
	n := cfg.Threads
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	batch := cfg.EventBatch
	if batch <= 0 {
		batch = 256
	}
	g := &Group{balancer: cfg.Balancer}
	if g.balancer == nil {
		g.balancer = new(RoundRobin)
	}
	nloops := n
	if cfg.Shared {
		nloops = 1
	}
	epoch := time.Now()
	for i := 0; i < nloops; i++ {
		p, err := newPoller()
		if err != nil {
			for _, l := range g.loops {
				l.p.Close()
			}
			return nil, fmt.Errorf("pool: creating poller %d: %w", i, err)
		}
		g.loops = append(g.loops, &Loop{id: i, p: p, table: &g.table, epoch: epoch, busyPoll: cfg.BusyPoll})
	}
	for i := 0; i < n; i++ {
		t := &thread{loop: g.loops[i%nloops]}
		g.threads = append(g.threads, t)
		g.wg.Add(1)
		go g.run(t, batch)
	}
	return g, nil
}

// Loops returns the group's loops; do not modify the slice.
func (g *Group) Loops() []*Loop { return g.loops }

// Table is the token table shared by all loops of the group.
func (g *Group) Table() *Table { return &g.table }

// Pick chooses a loop for a new registration through the Balancer.
func (g *Group) Pick() *Loop { return g.balancer.Pick(g.loops) }

// Stats returns one entry per thread.
func (g *Group) Stats() []ThreadStats {
	out := make([]ThreadStats, len(g.threads))
	for i, t := range g.threads {
		out[i] = ThreadStats{
			Loop: t.loop.id, Events: t.events.Load(), Stale: t.stale.Load(),
			Tasks: t.tasks.Load(), Timers: t.timers.Load(), Waits: t.waits.Load(),
		}
	}
	return out
}

// Stop makes every thread finish the tasks already posted and exit, waits
// for them, then closes the pollers. Owners must have removed their
// registrations first; Stop does not close anyone's descriptors.
func (g *Group) Stop() error {
	var err error
	g.stopOnce.Do(func() {
		for _, l := range g.loops {
			l.stopping.Store(true)
			if werr := l.p.WakeAll(); werr != nil {
				err = errors.Join(err, werr)
			}
		}
		g.wg.Wait()
		for _, l := range g.loops {
			if cerr := l.p.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	})
	return err
}

// run is one I/O thread: wait, dispatch events, fire timers, run tasks.
func (g *Group) run(t *thread, batch int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer g.wg.Done()
	l := t.loop
	events := make([]poller.Event, batch)
	var tasks []Task
	for {
		n := g.wait(t, events)
		for i := 0; i < n; i++ {
			if h := g.table.Lookup(events[i].Token); h != nil {
				h.HandleEvent(l, &events[i])
			} else {
				t.stale.Add(1)
			}
		}
		t.events.Add(uint64(n))
		t.timers.Add(uint64(l.runTimers()))
		t.tasks.Add(uint64(l.runTasks(&tasks)))
		if l.stopping.Load() && l.pending.Load() == 0 {
			return
		}
	}
}

// wait asks the poller for events, first spinning for the configured
// busy-poll time when the loop is idle.
func (g *Group) wait(t *thread, events []poller.Event) int {
	l := t.loop
	if l.busyPoll > 0 {
		deadline := time.Now().Add(l.busyPoll)
		for {
			t.waits.Add(1)
			n, err := l.p.Wait(events, 0)
			if err != nil {
				panic("pool: " + err.Error())
			}
			if n > 0 || l.waitTimeout() == 0 {
				return n
			}
			if time.Now().After(deadline) {
				break
			}
		}
	}
	l.sleepers.Add(1)
	timeout := l.waitTimeout()
	t.waits.Add(1)
	n, err := l.p.Wait(events, timeout)
	l.sleepers.Add(-1)
	if err != nil {
		// epoll_wait fails only on a bad descriptor or buffer: a bug here,
		// not a condition of the environment.
		panic("pool: " + err.Error())
	}
	return n
}
