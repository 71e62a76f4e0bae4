package pool

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/ioreactor/reactor/internal/lock"
	"github.com/ioreactor/reactor/poller"
)

// Task is work posted to a loop. It runs on one of the loop's I/O threads.
// Owners implement it on a long-lived object (a connection posts itself),
// so posting allocates nothing.
type Task interface {
	RunTask(l *Loop)
}

// Loop is one poller with the threads that wait on it, its queue of posted
// tasks and its timers. In the default mode every I/O thread has a loop of
// its own; in shared mode all threads wait on one loop, so the events of
// one connection land on different threads, as completions do on IOCP.
//
// Lock rules: mu guards tasks and timers and is never held while a task,
// a timer function or an event handler runs, nor across a poller call.
type Loop struct {
	id    int
	p     *poller.Poller
	table *Table
	epoch time.Time

	mu     lock.Mutex[loopMu]
	tasks  []Task
	timers timerHeap

	pending  atomic.Int64 // len(tasks), read without mu by the wait protocol
	nTimers  atomic.Int64 // len(timers)
	sleepers atomic.Int32 // threads inside (or about to enter) Wait
	stopping atomic.Bool
	load     atomic.Int64 // registrations assigned to this loop (Balancer input)
	busyPoll time.Duration
}

// loopMu is the lock class of Loop.mu (internal/lock).
type loopMu struct{}

// TimersArmed is how many timers wait on the loop now.
func (l *Loop) TimersArmed() int { return int(l.nTimers.Load()) }

// ID is the loop's index in its group.
func (l *Loop) ID() int { return l.id }

// Poller is the loop's poller, for registering descriptors.
func (l *Loop) Poller() *poller.Poller { return l.p }

// Table is the token table that the loop's threads dispatch through.
func (l *Loop) Table() *Table { return l.table }

// Load reports how many registrations are assigned to the loop.
func (l *Loop) Load() int64 { return l.load.Load() }

// AddLoad adjusts the loop's load by delta; owners call it when they
// attach to and leave the loop.
func (l *Loop) AddLoad(delta int64) { l.load.Add(delta) }

func (l *Loop) now() int64 { return int64(time.Since(l.epoch)) }

// Post queues t to run on the loop. Safe from any goroutine, including the
// loop's own threads. A task posted while the loop stops still runs before
// the threads exit.
func (l *Loop) Post(t Task) {
	l.mu.Lock()
	l.tasks = append(l.tasks, t)
	l.pending.Store(int64(len(l.tasks)))
	l.mu.Unlock()
	l.wake()
}

// wake interrupts a thread that sleeps in the poller. The waiting side
// announces itself in sleepers before it re-checks pending and nTimers;
// the posting side publishes its work before it reads sleepers. With both
// steps sequentially consistent, either the waiter sees the work or the
// poster sees the waiter, so no wake-up is lost.
//
// A loop whose poller is closed has stopped: nothing is asleep to wake.
func (l *Loop) wake() {
	if l.sleepers.Load() > 0 {
		if err := l.p.Wake(); err != nil && !errors.Is(err, poller.ErrClosed) {
			panic("pool: waking a loop failed: " + err.Error())
		}
	}
}

// Kick makes sure a thread of the loop will look at its poller soon: it
// wakes a sleeping thread and costs one atomic load otherwise. Owners call
// it after queuing a request on a ring-backed poller from outside the
// loop's threads, since such a request waits for the next Wait.
func (l *Loop) Kick() { l.wake() }

// runTasks runs the tasks queued so far. batch is the calling thread's
// scratch slice, so that threads sharing a loop never share it.
func (l *Loop) runTasks(batch *[]Task) int {
	if l.pending.Load() == 0 {
		return 0
	}
	l.mu.Lock()
	run := l.tasks
	l.tasks = (*batch)[:0]
	l.pending.Store(0)
	l.mu.Unlock()
	for i, t := range run {
		run[i] = nil
		t.RunTask(l)
	}
	*batch = run[:0]
	return len(run)
}

// waitTimeout is the poller timeout for the next Wait, in milliseconds.
func (l *Loop) waitTimeout() int {
	if l.pending.Load() > 0 || l.stopping.Load() {
		return 0
	}
	if l.nTimers.Load() == 0 {
		return -1
	}
	l.mu.Lock()
	ms := l.timeoutMillisLocked()
	l.mu.Unlock()
	return ms
}
