package pool_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor/pool"
)

// TestBlockingParkGivesTheWorkerBack: with one worker, a function parked
// on a wait that has not ended lets the queued function run in its place;
// then it resumes and finishes.
func TestBlockingParkGivesTheWorkerBack(t *testing.T) {
	b := newBlocking(t, 1, -1)
	release := newGate(t)
	var order []string
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	mustSubmit(t, b, func() {
		note("a starts")
		b.Park(release.wait)
		note("a resumes")
	})
	mustSubmit(t, b, func() { note("b runs") })
	// Without Park, b would wait for a's worker until release opened.
	waitFor(t, b, "b to run while a is parked", func(st pool.BlockingStats) bool {
		return st.Completed == 1 && st.Parked == 1 && st.Running == 0
	})
	release.open()
	waitFor(t, b, "a to finish", func(st pool.BlockingStats) bool {
		return st.Completed == 2 && st.Parked == 0 && st.Running == 0
	})
	want := []string{"a starts", "b runs", "a resumes"}
	if strings.Join(order, ", ") != strings.Join(want, ", ") {
		t.Errorf("order %q, want %q", order, want)
	}
}

// TestBlockingParkResumesAheadOfTheQueue: a parked function whose wait
// has ended gets the next free worker before functions that were queued
// before it resumed.
func TestBlockingParkResumesAheadOfTheQueue(t *testing.T) {
	b := newBlocking(t, 1, -1)
	wakeA, holdB := newGate(t), newGate(t)
	var order []string
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	mustSubmit(t, b, func() {
		b.Park(wakeA.wait)
		note("a")
	})
	waitFor(t, b, "a parked", func(st pool.BlockingStats) bool { return st.Parked == 1 && st.Running == 0 })
	mustSubmit(t, b, func() { holdB.wait(); note("b") })
	waitFor(t, b, "b running", func(st pool.BlockingStats) bool { return st.Running == 1 })
	mustSubmit(t, b, func() { note("c") })
	wakeA.open()
	// a's wait has ended; it is on its way to the resumers' line.
	deadline := time.Now().Add(blockingPatience)
	for pool.Resuming(b) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("a never asked for its worker back: %+v", b.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if st := b.Stats(); st.Queued != 1 || st.Parked != 1 {
		t.Fatalf("before b finishes: %+v, want c queued and a parked", st)
	}
	holdB.open()
	waitFor(t, b, "all done", func(st pool.BlockingStats) bool { return st.Completed == 3 && st.Running == 0 })
	if got := strings.Join(order, ""); got != "bac" {
		t.Errorf("order %q, want \"bac\": the resumed function before the queued one", got)
	}
}

// TestBlockingParkKeepsTheBound: many functions park and resume at
// random moments; never more than the workers run outside Park at once,
// and every function finishes.
func TestBlockingParkKeepsTheBound(t *testing.T) {
	const workers, funcs, parks = 3, 200, 5
	b := newBlocking(t, workers, -1)
	var inside, peak atomic.Int64
	enter := func() {
		n := inside.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
	}
	var wg sync.WaitGroup
	wg.Add(funcs)
	for i := range funcs {
		mustSubmit(t, b, func() {
			defer wg.Done()
			enter()
			for k := range parks {
				inside.Add(-1)
				b.Park(func() {
					if (i+k)%3 == 0 {
						runtime.Gosched()
					}
				})
				enter()
			}
			inside.Add(-1)
		})
	}
	wg.Wait()
	waitFor(t, b, "pool idle", func(st pool.BlockingStats) bool { return st.Running == 0 && st.Parked == 0 })
	if p := peak.Load(); p > workers {
		t.Errorf("%d functions ran outside Park at once, bound %d", p, workers)
	}
	if st := b.Stats(); st.Completed != funcs {
		t.Errorf("completed %d, want %d", st.Completed, funcs)
	}
}

// TestBlockingParkPanicTakesTheWorkerBack: a wait that panics still
// leaves the pool's count right: the panic is recovered as any other, and
// the worker is free afterwards.
func TestBlockingParkPanicTakesTheWorkerBack(t *testing.T) {
	b := newBlocking(t, 1, -1)
	mustSubmit(t, b, func() { b.Park(func() { panic("in wait") }) })
	waitFor(t, b, "the panic recovered", func(st pool.BlockingStats) bool {
		return st.Panics == 1 && st.Running == 0 && st.Parked == 0
	})
	done := make(chan struct{})
	mustSubmit(t, b, func() { close(done) })
	<-done
}

// TestBlockingStopWaitsForParked: Stop does not count a pool idle while a
// function is parked, and says so when it times out.
func TestBlockingStopWaitsForParked(t *testing.T) {
	b, err := pool.NewBlocking(1, -1)
	if err != nil {
		t.Fatal(err)
	}
	release := newGate(t)
	finished := make(chan struct{})
	if err := b.Submit(func() { b.Park(release.wait); close(finished) }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, "parked", func(st pool.BlockingStats) bool { return st.Parked == 1 && st.Running == 0 })
	err = b.Stop(0)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 parked") {
		t.Fatalf("Stop with a parked function: %v, want a timeout naming it", err)
	}
	release.open()
	<-finished
	if err := b.Stop(blockingPatience); err != nil {
		t.Fatalf("Stop after it finished: %v", err)
	}
}
