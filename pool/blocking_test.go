package pool_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/pool"
)

// blockingPatience bounds every wait in these tests. It is far longer than
// anything should take, so that reaching it means a function was lost, not
// that the machine was slow.
const blockingPatience = 20 * time.Second

// newBlocking makes a pool for one test and stops it when the test ends,
// failing the test if work was still left then.
func newBlocking(t testing.TB, workers, maxQueued int) *pool.Blocking {
	t.Helper()
	b, err := pool.NewBlocking(workers, maxQueued)
	if err != nil {
		t.Fatalf("NewBlocking(%d, %d): %v", workers, maxQueued, err)
	}
	t.Cleanup(func() {
		if err := b.Stop(blockingPatience); err != nil {
			t.Errorf("Stop at cleanup: %v", err)
		}
	})
	return b
}

// gate holds functions until it is opened. Registering a gate after its
// pool means the cleanup opens it before the pool's cleanup stops the
// pool, so a failed test does not wait out Stop's timeout.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate(t testing.TB) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }
func (g *gate) wait() { <-g.ch }

// waitFor polls cond until it holds, failing t with what and the pool's
// counters if it does not within blockingPatience.
func waitFor(t testing.TB, b *pool.Blocking, what string, cond func(pool.BlockingStats) bool) {
	t.Helper()
	deadline := time.Now().Add(blockingPatience)
	for {
		st := b.Stats()
		if cond(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s: %+v", what, st)
		}
		time.Sleep(time.Millisecond)
	}
}

// mustSubmit submits fn and fails t if the pool refuses it.
func mustSubmit(t testing.TB, b *pool.Blocking, fn func()) {
	t.Helper()
	if err := b.Submit(fn); err != nil {
		t.Fatalf("Submit: %v", err)
	}
}

// occupy submits one function per worker that holds its worker until g
// opens, and waits until they all run, so that whatever is submitted next
// is queued.
func occupy(t testing.TB, b *pool.Blocking, g *gate) {
	t.Helper()
	n := b.Stats().Workers
	for range n {
		mustSubmit(t, b, g.wait)
	}
	waitFor(t, b, "every worker busy", func(st pool.BlockingStats) bool { return st.Running == n })
}

func noop() {}

func TestNewBlockingWorkers(t *testing.T) {
	for _, tc := range []struct{ in, want int }{
		{0, pool.DefaultBlockingWorkers},
		{-5, pool.DefaultBlockingWorkers},
		{1, 1},
		{7, 7},
	} {
		b := newBlocking(t, tc.in, 0)
		if got := b.Stats().Workers; got != tc.want {
			t.Errorf("NewBlocking(%d, 0): Workers = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestBlockingQueueLimit fills the queue behind busy workers: the
// function past maxQueued is refused with ErrBlockingFull (zero meaning
// DefaultBlockingQueue, a negative maxQueued meaning no limit), and
// everything accepted runs once the workers are free.
func TestBlockingQueueLimit(t *testing.T) {
	for _, tc := range []struct {
		workers, maxQueued int
		limit              int // queued functions accepted; -1: no limit
	}{
		{2, 3, 3},
		{1, 0, pool.DefaultBlockingQueue},
		{1, -1, -1},
	} {
		t.Run(fmt.Sprintf("workers=%d,maxQueued=%d", tc.workers, tc.maxQueued), func(t *testing.T) {
			b := newBlocking(t, tc.workers, tc.maxQueued)
			g := newGate(t)
			occupy(t, b, g)

			var ran atomic.Int64
			count := func() { ran.Add(1) }
			n := tc.limit
			if n < 0 {
				n = pool.DefaultBlockingQueue + 1000
			}
			for range n {
				mustSubmit(t, b, count)
			}
			err := b.Submit(count)
			if tc.limit >= 0 && !errors.Is(err, pool.ErrBlockingFull) {
				t.Fatalf("Submit past %d queued: %v, want ErrBlockingFull", n, err)
			}
			if tc.limit < 0 {
				if err != nil {
					t.Fatalf("Submit to an unbounded queue: %v", err)
				}
				n++
			}
			if st := b.Stats(); st.Queued != n || st.PeakQueued != n || st.Running != tc.workers {
				t.Fatalf("Stats = %+v, want Queued and PeakQueued %d, Running %d", st, n, tc.workers)
			}

			g.open()
			want := uint64(tc.workers + n)
			waitFor(t, b, "queue drained", func(st pool.BlockingStats) bool { return st.Completed == want })
			if ran.Load() != int64(n) {
				t.Fatalf("%d queued functions ran, want %d", ran.Load(), n)
			}
			// Room again, and the peak remembered.
			mustSubmit(t, b, count)
			waitFor(t, b, "pool idle", func(st pool.BlockingStats) bool { return st.Running == 0 })
			if st := b.Stats(); st.Queued != 0 || st.PeakQueued != n {
				t.Fatalf("Stats = %+v, want Queued 0, PeakQueued %d", st, n)
			}
		})
	}
}

// TestBlockingSubmitDoesNotWait: with every worker busy, Submit returns at
// once and the function waits in the queue. A Submit that waited for a
// worker would wait for the gate, which opens only after it returned.
func TestBlockingSubmitDoesNotWait(t *testing.T) {
	b := newBlocking(t, 2, -1)
	g := newGate(t)
	occupy(t, b, g)

	var ran atomic.Int64
	done := make(chan error, 1)
	go func() {
		for range 10 {
			if err := b.Submit(func() { ran.Add(1) }); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Submit with every worker busy: %v", err)
		}
	case <-time.After(blockingPatience):
		t.Fatal("Submit waited for a busy worker")
	}
	if st := b.Stats(); st.Running != 2 || st.Queued != 10 || ran.Load() != 0 {
		t.Fatalf("Stats = %+v and %d ran, want Running 2, Queued 10, none run", st, ran.Load())
	}
	g.open()
	waitFor(t, b, "all run", func(st pool.BlockingStats) bool { return st.Completed == 12 })
	if ran.Load() != 10 {
		t.Fatalf("%d queued functions ran, want 10", ran.Load())
	}
}

// TestBlockingBound runs many short functions from several goroutines and
// measures how many run at once: never more than the bound. It also
// checks, from a sampler, that the counters never show a queue while a
// worker is free, which is the state a stranded function would leave.
func TestBlockingBound(t *testing.T) {
	const workers, submitters, each = 4, 8, 25
	b := newBlocking(t, workers, -1)

	var cur, peak atomic.Int64
	fn := func() {
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(100 * time.Microsecond)
		cur.Add(-1)
	}

	stop := make(chan struct{})
	sampled := make(chan error, 1)
	go func() { sampled <- sampleInvariants(b, stop) }()

	var wg sync.WaitGroup
	for range submitters {
		wg.Go(func() {
			for range each {
				if err := b.Submit(fn); err != nil {
					t.Errorf("Submit: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, b, "all run", func(st pool.BlockingStats) bool { return st.Completed == submitters*each })
	close(stop)
	if err := <-sampled; err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p < 1 || p > workers {
		t.Fatalf("%d functions ran at once, bound %d", p, workers)
	}
	t.Logf("at most %d of %d workers busy at once; peak queue %d", peak.Load(), workers, b.Stats().PeakQueued)
}

// sampleInvariants reads b's counters until stop closes and reports the
// first reading that breaks the pool's invariants: never more running
// than the bound, and never a function queued while a worker is free.
func sampleInvariants(b *pool.Blocking, stop <-chan struct{}) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		st := b.Stats()
		if st.Running > st.Workers || (st.Queued > 0 && st.Running != st.Workers) || st.Queued > st.PeakQueued {
			return fmt.Errorf("inconsistent Stats: %+v", st)
		}
		runtime.Gosched()
	}
}

// TestBlockingFIFO: with one worker, functions run in submission order.
func TestBlockingFIFO(t *testing.T) {
	const n = 200
	b := newBlocking(t, 1, -1)
	g := newGate(t)
	occupy(t, b, g)

	var order []int // only the single worker appends
	for i := range n {
		mustSubmit(t, b, func() { order = append(order, i) })
	}
	g.open()
	waitFor(t, b, "all run", func(st pool.BlockingStats) bool { return st.Completed == n+1 })
	// Stats took the pool's lock after the last function, so order is
	// safe to read here.
	if len(order) != n {
		t.Fatalf("%d functions ran, want %d", len(order), n)
	}
	for i, v := range order {
		if v != i {
			t.Fatalf("function %d ran in place %d: %v", v, i, order)
		}
	}
}

// TestBlockingPanic: a panicking function is counted, and the worker goes
// on with the queue behind it; later work runs as well.
func TestBlockingPanic(t *testing.T) {
	b := newBlocking(t, 1, -1)
	g := newGate(t)
	occupy(t, b, g)

	var ran atomic.Int64
	count := func() { ran.Add(1) }
	mustSubmit(t, b, func() { panic("boom") })
	mustSubmit(t, b, count)
	mustSubmit(t, b, func() { panic(errors.New("boom")) })
	mustSubmit(t, b, func() { panic(nil) })
	mustSubmit(t, b, count)
	g.open()
	waitFor(t, b, "queue drained", func(st pool.BlockingStats) bool { return st.Completed == 6 })
	if st := b.Stats(); st.Panics != 3 || ran.Load() != 2 {
		t.Fatalf("Stats = %+v and %d ran, want Panics 3 and 2 run", st, ran.Load())
	}

	// A fresh worker after the pool went idle.
	waitFor(t, b, "pool idle", func(st pool.BlockingStats) bool { return st.Running == 0 })
	mustSubmit(t, b, count)
	waitFor(t, b, "later work", func(st pool.BlockingStats) bool { return st.Completed == 7 })
	if ran.Load() != 3 {
		t.Fatalf("%d ran, want 3", ran.Load())
	}
}

// TestBlockingGoexit: a function that ends its goroutine with
// runtime.Goexit (t.FailNow in a helper, say) takes neither its worker's
// slot nor the queue behind it down with it.
func TestBlockingGoexit(t *testing.T) {
	b := newBlocking(t, 1, -1)
	g := newGate(t)
	occupy(t, b, g)

	var ran atomic.Int64
	mustSubmit(t, b, runtime.Goexit)
	for range 10 {
		mustSubmit(t, b, func() { ran.Add(1) })
	}
	mustSubmit(t, b, runtime.Goexit)
	g.open()
	waitFor(t, b, "queue drained", func(st pool.BlockingStats) bool { return st.Completed == 13 && st.Running == 0 })
	if st := b.Stats(); st.Panics != 0 || ran.Load() != 10 {
		t.Fatalf("Stats = %+v and %d ran, want Panics 0 and 10 run", st, ran.Load())
	}
}

// TestBlockingSubmitFromFunction: a running function may submit more
// work, even to a pool whose only worker it occupies.
func TestBlockingSubmitFromFunction(t *testing.T) {
	const n = 100
	b := newBlocking(t, 1, 1)
	var step func()
	var ran atomic.Int64
	step = func() {
		if ran.Add(1) < n {
			if err := b.Submit(step); err != nil {
				t.Errorf("Submit from a function: %v", err)
			}
		}
	}
	mustSubmit(t, b, step)
	waitFor(t, b, "chain finished", func(st pool.BlockingStats) bool { return st.Completed == n && st.Running == 0 })
}

func TestBlockingSubmitNilPanics(t *testing.T) {
	b := newBlocking(t, 1, 0)
	wantBufferPanic(t, "pool: Submit of a nil function", func() { b.Submit(nil) })
}

// TestBlockingStopWaits: Stop refuses new work at once but returns only
// after the running and the queued functions have finished.
func TestBlockingStopWaits(t *testing.T) {
	b := newBlocking(t, 2, -1)
	g := newGate(t)
	occupy(t, b, g)

	var ran atomic.Int64
	count := func() { ran.Add(1) }
	for range 5 {
		mustSubmit(t, b, count)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- b.Stop(blockingPatience) }()

	// Submit until the pool refuses: that is Stop under way. What was
	// accepted before then is queued, and must run too.
	queued := int64(5)
	deadline := time.Now().Add(blockingPatience)
	for {
		err := b.Submit(count)
		if errors.Is(err, pool.ErrBlockingStopped) {
			break
		}
		if err != nil {
			t.Fatalf("Submit before Stop took effect: %v", err)
		}
		queued++
		if time.Now().After(deadline) {
			t.Fatal("Submit still accepted work long after Stop was called")
		}
		time.Sleep(100 * time.Microsecond)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while functions were still running", err)
	default:
	}

	g.open()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(blockingPatience):
		t.Fatal("Stop did not return after the work finished")
	}
	if st := b.Stats(); st.Running != 0 || st.Queued != 0 || st.Completed != uint64(2+queued) || ran.Load() != queued {
		t.Fatalf("after Stop: Stats = %+v and %d ran, want all %d finished", st, ran.Load(), 2+queued)
	}
	if err := b.Submit(count); !errors.Is(err, pool.ErrBlockingStopped) {
		t.Fatalf("Submit after Stop: %v, want ErrBlockingStopped", err)
	}
	if err := b.Stop(0); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// TestBlockingStopTimeout: a Stop whose timeout is shorter than the work
// says what was left; the work left still runs, and a later Stop waits
// for it.
func TestBlockingStopTimeout(t *testing.T) {
	b := newBlocking(t, 1, -1)
	g := newGate(t)
	occupy(t, b, g)

	var ran atomic.Int64
	for range 3 {
		mustSubmit(t, b, func() { ran.Add(1) })
	}
	err := b.Stop(20 * time.Millisecond)
	if err == nil {
		t.Fatal("Stop with work left returned nil")
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 running, 3 queued") {
		t.Fatalf("Stop = %q, want it to wrap context.DeadlineExceeded and count 1 running, 3 queued", err)
	}
	if st := b.Stats(); st.Running != 1 || st.Queued != 3 {
		t.Fatalf("after Stop: Stats = %+v, want Running 1, Queued 3", st)
	}
	if err := b.Submit(noop); !errors.Is(err, pool.ErrBlockingStopped) {
		t.Fatalf("Submit after Stop: %v, want ErrBlockingStopped", err)
	}

	g.open()
	if err := b.Stop(blockingPatience); err != nil {
		t.Fatalf("second Stop, after the work finished: %v", err)
	}
	if st := b.Stats(); st.Running != 0 || st.Queued != 0 || st.Completed != 4 || ran.Load() != 3 {
		t.Fatalf("Stats = %+v and %d queued functions ran, want all 4 finished", st, ran.Load())
	}
}

// TestBlockingStopIdle: Stop on a pool with nothing to do succeeds even
// with no time given.
func TestBlockingStopIdle(t *testing.T) {
	b := newBlocking(t, 0, 0)
	if err := b.Stop(0); err != nil {
		t.Fatalf("Stop(0) on an idle pool: %v", err)
	}
	if err := b.Submit(noop); !errors.Is(err, pool.ErrBlockingStopped) {
		t.Fatalf("Submit after Stop: %v, want ErrBlockingStopped", err)
	}
}

// TestBlockingGoroutinesReleased: after Stop, the pool's goroutines (ants'
// workers and housekeeping) are gone, whether Stop saw all work finish or
// timed out and the work left finished later.
func TestBlockingGoroutinesReleased(t *testing.T) {
	t.Run("drained", func(t *testing.T) {
		base := testutil.Snapshot()
		b, err := pool.NewBlocking(8, -1)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			mustSubmit(t, b, func() {
				if i%4 == 0 {
					time.Sleep(50 * time.Microsecond)
				}
			})
		}
		if err := b.Stop(blockingPatience); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if err := testutil.WaitBaseline(base); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("timed out", func(t *testing.T) {
		base := testutil.Snapshot()
		b, err := pool.NewBlocking(4, -1)
		if err != nil {
			t.Fatal(err)
		}
		g := newGate(t)
		occupy(t, b, g)
		for range 100 {
			mustSubmit(t, b, noop)
		}
		if err := b.Stop(time.Millisecond); err == nil {
			t.Fatal("Stop with work running returned nil")
		}
		g.open()
		waitFor(t, b, "the work left finished", func(st pool.BlockingStats) bool { return st.Running == 0 && st.Completed == 104 })
		if err := testutil.WaitBaseline(base); err != nil {
			t.Fatal(err)
		}
	})
}

// TestBlockingQueueDoesNotAllocate: once the queue has grown to its working
// size, queueing a function allocates nothing.
func TestBlockingQueueDoesNotAllocate(t *testing.T) {
	b := newBlocking(t, 1, -1)
	warm := newGate(t)
	occupy(t, b, warm)
	for range 1000 {
		mustSubmit(t, b, noop)
	}
	warm.open()
	waitFor(t, b, "queue drained", func(st pool.BlockingStats) bool { return st.Queued == 0 })

	g := newGate(t)
	occupy(t, b, g)
	allocs := testing.AllocsPerRun(1000, func() {
		if err := b.Submit(noop); err != nil {
			t.Fatalf("Submit: %v", err)
		}
	})
	if allocs != 0 {
		t.Fatalf("queueing a function allocated %v times", allocs)
	}
	g.open()
}

// TestBlockingStress submits many short functions, some sleeping a little,
// from many goroutines that pause now and then so the queue keeps running
// empty and workers keep giving their slots back: the moment a function
// could be stranded, if a worker left just as a submitter queued behind
// it. Every accepted function must run, exactly once, within a bounded
// time, with the counters consistent throughout.
func TestBlockingStress(t *testing.T) {
	submitters, each := 16, 2000
	if testing.Short() || runtime.GOOS == "windows" {
		// On Windows a time.Sleep of 1 µs lasts a timer tick (about a
		// millisecond, more under Wine on a busy machine), so the full
		// count would take minutes there, not seconds.
		submitters, each = 8, 300
	}
	for _, workers := range []int{1, 3, 16} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			b := newBlocking(t, workers, 64)
			var ran atomic.Int64
			fns := [...]func(){
				func() { ran.Add(1) },
				func() { ran.Add(1); runtime.Gosched() },
				func() { ran.Add(1); time.Sleep(time.Microsecond) },
			}

			stop := make(chan struct{})
			sampled := make(chan error, 1)
			go func() { sampled <- sampleInvariants(b, stop) }()

			var full atomic.Int64
			deadline := time.Now().Add(blockingPatience)
			var wg sync.WaitGroup
			for s := range submitters {
				wg.Go(func() {
					for i := range each {
						// A full queue is expected now and then: back off
						// and try again, so every function is submitted.
						for err := b.Submit(fns[(s+i)%len(fns)]); err != nil; err = b.Submit(fns[(s+i)%len(fns)]) {
							if !errors.Is(err, pool.ErrBlockingFull) {
								t.Errorf("Submit: %v", err)
								return
							}
							if time.Now().After(deadline) {
								t.Errorf("queue still full after %v: %+v", blockingPatience, b.Stats())
								return
							}
							full.Add(1)
							runtime.Gosched()
						}
						switch {
						case i%64 == 0:
							time.Sleep(time.Microsecond)
						case i%8 == 0:
							runtime.Gosched()
						}
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				close(stop)
				<-sampled
				return
			}
			want := uint64(submitters * each)
			waitFor(t, b, fmt.Sprintf("all %d functions run", want), func(st pool.BlockingStats) bool {
				return st.Completed == want && st.Running == 0
			})
			close(stop)
			if err := <-sampled; err != nil {
				t.Fatal(err)
			}
			if st := b.Stats(); st.Queued != 0 || st.Panics != 0 || ran.Load() != int64(want) {
				t.Fatalf("Stats = %+v and %d ran, want Queued 0, Panics 0, %d run", st, ran.Load(), want)
			}
			t.Logf("%d run, %d Submits refused as full, peak queue %d", want, full.Load(), b.Stats().PeakQueued)
		})
	}
}

// TestBlockingBursts submits many small bursts from a few goroutines at
// once and waits for each burst to finish before the next: each burst ends
// with the queue running empty while submitters may still be queueing, the
// moment a function could be stranded, and a function stranded at the end
// of a burst would stay so, since no later Submit comes to start a worker
// for it. Every burst must finish within a bounded time.
func TestBlockingBursts(t *testing.T) {
	const submitters, each = 4, 3
	bursts := 1000
	if testing.Short() {
		bursts = 200
	}
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			b := newBlocking(t, workers, -1)
			var want uint64
			for burst := range bursts {
				var wg sync.WaitGroup
				for range submitters {
					wg.Go(func() {
						for range each {
							if err := b.Submit(noop); err != nil {
								t.Errorf("Submit: %v", err)
								return
							}
						}
					})
				}
				wg.Wait()
				if t.Failed() {
					return
				}
				want += submitters * each
				deadline := time.Now().Add(blockingPatience)
				for st := b.Stats(); st.Completed != want || st.Running != 0; st = b.Stats() {
					if time.Now().After(deadline) {
						t.Fatalf("burst %d not finished after %v: %+v, want Completed %d", burst, blockingPatience, st, want)
					}
					runtime.Gosched()
				}
			}
		})
	}
}

// BenchmarkBlockingSubmit measures handing an empty function to the pool
// and running it: "queue" submits b.N functions back to back and waits for
// them all (throughput, the queue absorbing the bursts), "roundtrip"
// waits for each function to run before submitting the next (the latency
// of waking a worker).
func BenchmarkBlockingSubmit(b *testing.B) {
	for _, workers := range []int{1, pool.DefaultBlockingWorkers} {
		b.Run(fmt.Sprintf("queue/workers=%d", workers), func(b *testing.B) {
			p, err := pool.NewBlocking(workers, -1)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := p.Submit(noop); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Stop(time.Minute); err != nil {
				b.Fatal(err)
			}
		})
	}
	b.Run("roundtrip", func(b *testing.B) {
		p, err := pool.NewBlocking(1, -1)
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		signal := func() { done <- struct{}{} }
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Submit(signal); err != nil {
				b.Fatal(err)
			}
			<-done
		}
		if err := p.Stop(time.Minute); err != nil {
			b.Fatal(err)
		}
	})
}
