package sock_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/poller"
)

// requireRing skips a test of the io_uring backend where the kernel
// refuses io_uring (disabled by sysctl or seccomp).
func requireRing(t *testing.T) {
	t.Helper()
	e, err := reactor.New(reactor.Config{IOThreads: 1, Backend: reactor.BackendURing})
	if errors.Is(err, poller.ErrNotSupported) {
		t.Skipf("this kernel refuses io_uring: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestRingRecvRetriesWhenBuffersRunOut: with a ring of two slots and 64
// connections sending at once, receives find no buffer (-ENOBUFS) and are
// queued again; every byte still comes back intact and no buffer is lost.
func TestRingRecvRetriesWhenBuffersRunOut(t *testing.T) {
	requireRing(t)
	e, addr := listenEcho(t, reactor.Config{IOThreads: 1, Backend: reactor.BackendURing, RingBuffers: 1, RingSlots: 2, BufferSize: 4096})
	echoConcurrently(t, addr, 64, 256<<10)
	s := e.Stats()
	if s.RecvNoBuffers == 0 {
		t.Fatal("no receive found the ring empty: the retry path did not run")
	}
	if s.RingBuffers != 2 {
		t.Fatalf("%d buffers lent to the ring, want 2 (grown from 1, capped by the slots)", s.RingBuffers)
	}
	t.Logf("receives retried for lack of buffers: %d", s.RecvNoBuffers)
}

// TestRingLoanGrowsWithLoad: a thread starts with one buffer lent and
// doubles its loan whenever a receive finds none, so 64 busy connections
// make it grow; it never lends more than the ring has slots.
func TestRingLoanGrowsWithLoad(t *testing.T) {
	requireRing(t)
	e, addr := listenEcho(t, reactor.Config{IOThreads: 1, Backend: reactor.BackendURing, RingBuffers: 1, RingSlots: 64, BufferSize: 4096})
	if n := e.Stats().RingBuffers; n != 1 {
		t.Fatalf("%d buffers lent at start, want 1", n)
	}
	echoConcurrently(t, addr, 64, 64<<10)
	s := e.Stats()
	if s.RingBuffers <= 1 || s.RingBuffers > 64 || s.RingBuffers&(s.RingBuffers-1) != 0 {
		t.Fatalf("%d buffers lent after the load, want a doubling of 1 up to 64", s.RingBuffers)
	}
	t.Logf("lent %d buffers after %d receives found none", s.RingBuffers, s.RecvNoBuffers)
}

// TestAutoBackendTakesTheRing: the default backend is io_uring where the
// kernel allows it, and epoll when the threads share a poller.
func TestAutoBackendTakesTheRing(t *testing.T) {
	requireRing(t)
	// reactor.New, not testutil.Engine, which may force a backend.
	e, err := reactor.New(reactor.Config{IOThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if e.Backend() != reactor.BackendURing {
		t.Fatalf("BackendAuto took %v, want uring", e.Backend())
	}
	shared := testutil.Engine(t, reactor.Config{IOThreads: 2, SharedPoller: true})
	if shared.Backend() != reactor.BackendEpoll {
		t.Fatalf("a shared poller runs on %v, want epoll", shared.Backend())
	}
	if _, err := reactor.New(reactor.Config{Backend: reactor.BackendURing, SharedPoller: true}); err == nil {
		t.Fatal("BackendURing with SharedPoller was accepted")
	}
}

// echoConcurrently echoes one message of size bytes on each of n
// connections at once and fails t on any error.
func echoConcurrently(t *testing.T, addr string, n, size int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- echoOnce(addr, size, uint64(i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
