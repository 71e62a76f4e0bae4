package faults_test

import (
	"bytes"
	"flag"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
)

// churnCycles sets TestChurn's count of cycles. The default is a
// quarter of the 200,000 the test is named for: on this project's
// machines (2 CPUs, shared) 200,000 under -race took 62 s on io_uring and
// 154 s on epoll, past the minute a test may take in CI.
var churnCycles = flag.Int("churn", 0, "TestChurn's connect/echo/close cycles; 0 means 50,000 (20,000 with -short); 200000 is the full run")

// TestChurn: connect, echo 64 bytes, close, 256 at a time: 50,000
// cycles by default, 20,000 with -short, 200,000 with -churn 200000 (the
// count is a flag because the full run takes over a minute under -race;
// see churnCycles). The server counts an OnClose for every OnOpen and
// never a second one for a connection; afterwards the engine holds no
// connection, descriptor or buffer, the process is back to its
// descriptors and goroutines, and the live heap after a collection, less
// what the buffer pool keeps, is within 10% (at least heapSlack) of
// where it was after a warm-up of the same shape. One allocation leaked
// by each connection would break that bound from 20,000 cycles on; a
// goroutine or a descriptor leaked would fail the baseline check at once.
// Under Wine, which made about 250 cycles a second, the count is 10,000.
func TestChurn(t *testing.T) {
	cycles := 50_000
	if testing.Short() {
		cycles = 20_000
	}
	warm := 20_000
	if underWine() {
		cycles, warm = 10_000, 2_000
	}
	if *churnCycles > 0 {
		cycles = *churnCycles
	}
	const inFlight = 256
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	h := &churnHandler{Handler: echo.Handler{Reads: 1}}
	ln, err := e.Listen("127.0.0.1:0", h, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	settled := func(n int64) {
		t.Helper()
		waitCond(t, 30*time.Second, "an OnClose for every OnOpen", func() bool {
			return h.opens.Load() == n && h.closes.Load() == n
		})
	}

	// The warm-up grows what is kept for reuse (the buffer pool, the
	// token table, Go's own pools) to this load's size. 5,000 cycles were
	// not enough on a faster machine (2026-12-04): the heap outside the
	// pool then grew by 92–137 KiB over 200,000 cycles and 112–157 KiB
	// over 400,000, failing the bound once in CI, old code and new alike;
	// after 20,000 it grew by 35–40 KiB over 200,000. A step that the
	// longer warm-up takes, not a leak (0.3 bytes a cycle at most).
	if err := churn(addr, warm, inFlight); err != nil {
		t.Fatal(err)
	}
	settled(int64(warm))
	base := testutil.Snapshot()
	engineFDs := e.Stats().FDs // the listener's
	heapBefore, poolBefore := liveHeap(), pooledBytes(e)

	start := time.Now()
	if err := churn(addr, cycles, inFlight); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	settled(int64(warm + cycles))
	if n := h.twice.Load(); n != 0 {
		t.Errorf("%d connections got a second OnClose", n)
	}
	if s := e.Stats(); s.ConnsOpen != 0 || s.FDs != engineFDs || s.BuffersOut() != 0 {
		t.Errorf("after the churn: %d connections open, %d descriptors (%d before), %d buffers out", s.ConnsOpen, s.FDs, engineFDs, s.BuffersOut())
	}
	if err := testutil.WaitBaseline(base); err != nil {
		t.Error(err)
	}
	heapAfter, poolAfter := liveHeap(), pooledBytes(e)
	// The buffer pool keeps what its peak needed; a burst of the churn
	// may pass the warm-up's peak and grow it, visibly and once. The
	// bound is on the rest of the heap.
	restBefore, restAfter := int64(heapBefore-poolBefore), int64(heapAfter-poolAfter)
	t.Logf("%d cycles in %v (%.0f a second, %d at a time); live heap %d KiB after the warm-up, %d KiB after the churn; of it pooled buffers %d KiB, then %d KiB; the rest %+.1f%%",
		cycles, took.Round(time.Millisecond), float64(cycles)/took.Seconds(), inFlight,
		heapBefore>>10, heapAfter>>10, poolBefore>>10, poolAfter>>10, 100*(float64(restAfter)/float64(restBefore)-1))
	if allowed := max(restBefore/10, heapSlack); restAfter > restBefore+allowed {
		t.Errorf("the live heap outside the buffer pool grew from %d to %d bytes over %d cycles, more than the %d allowed", restBefore, restAfter, cycles, allowed)
	}
}

// pooledBytes is the memory of the Go heap the engine's buffer pool holds,
// in use or kept for reuse: none where its buffers live in mapped slabs
// (Linux, without the race detector), all of them otherwise.
func pooledBytes(e *reactor.Engine) uint64 {
	s := e.Stats().Buffers
	return uint64(max(s.Allocated*int64(s.Size)-s.Mapped, 0))
}

// heapSlack is the least growth of the live heap outside the buffer pool
// that TestChurn allows. That heap is only about 540 KiB after the
// warm-up, and runs on this machine grew it by 35 to 72 KiB whatever the
// count of cycles, 20,000 or 200,000: a step, not a leak. 128 KiB is
// under a byte a connection at 200,000 cycles, and at 20,000 still less
// than one leaked allocation (8 bytes at least) each.
const heapSlack = 128 << 10

// liveHeap is the heap in use after collections: two, so that what the
// first finds in sync.Pools' victim caches is gone too.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// churnHandler echoes and counts each connection's OnOpen and OnClose.
type churnHandler struct {
	echo.Handler
	opens, closes, twice atomic.Int64
}

func (h *churnHandler) OnOpen(c *reactor.Conn) {
	c.SetContext(new(atomic.Bool))
	h.opens.Add(1)
	h.Handler.OnOpen(c)
}

func (h *churnHandler) OnClose(c *reactor.Conn, err error) {
	if c.Context().(*atomic.Bool).Swap(true) {
		h.twice.Add(1)
		return
	}
	h.closes.Add(1)
}

// churn runs n cycles, inFlight at a time: connect, send 64 bytes, read
// them back and compare, close. It returns the first failure.
func churn(addr string, n, inFlight int) error {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for w := range inFlight {
		wg.Go(func() {
			msg := bytes.Repeat([]byte{byte(w)}, 64)
			got := make([]byte, len(msg))
			for next.Add(1) <= int64(n) && failed.Load() == nil {
				if err := churnOnce(addr, msg, got); err != nil {
					failed.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return *err
	}
	return nil
}

func churnOnce(addr string, msg, got []byte) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return testutil.RoundTrip(c, msg, got)
}
