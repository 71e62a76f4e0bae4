package sock_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/sock"
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

// TestRingRelendsEchoedBuffers: an echo hands each received buffer back
// to its connection to send; once sent, the buffer is kept by the ring as
// a spare and lent again in place of one from the pool. 2,000 messages,
// one at a time, then cost the pool no Get each: without the spares every
// receive took one (its replacement) and every send released one. The
// spares never exceed the loan, and they are no leak: the engine's own
// check at shutdown (testutil.Engine) finds every buffer back in the
// pool.
func TestRingRelendsEchoedBuffers(t *testing.T) {
	requireRing(t)
	e, addr := listenEcho(t, reactor.Config{IOThreads: 1, Backend: reactor.BackendURing})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	const messages = 2000
	msg := make([]byte, 100)
	before := e.Stats().Buffers.Gets
	for i := range messages {
		msg[0] = byte(i)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, msg); err != nil || msg[0] != byte(i) {
			t.Fatalf("message %d: %v, first byte %d", i, err, msg[0])
		}
	}
	s := e.Stats()
	if gets := s.Buffers.Gets - before; gets > messages/10 {
		t.Errorf("%d buffers taken from the pool for %d echoed messages, want at most %d: echoed buffers are not lent again", gets, messages, messages/10)
	}
	if s.RingSpares > s.RingBuffers {
		t.Errorf("%d spares kept for %d buffers lent, want at most as many", s.RingSpares, s.RingBuffers)
	}
	t.Logf("pool Gets for %d messages: %d; spares %d, lent %d", messages, s.Buffers.Gets-before, s.RingSpares, s.RingBuffers)
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

// TestClosedListenerFreesItsPortAtOnce: once a listener's Done is closed,
// its socket is gone: the port can be bound again at once, without
// SO_REUSEADDR. On io_uring the listener's poll request holds the socket
// open until the ring applies its removal, so teardown must apply it
// before it closes the descriptor; with SO_REUSEPORT a socket kept open
// that way went on taking connections nobody accepted.
func TestClosedListenerFreesItsPortAtOnce(t *testing.T) {
	for _, backend := range []reactor.Backend{reactor.BackendEpoll, reactor.BackendURing} {
		if backend == reactor.BackendURing {
			requireRing(t)
		}
		e := testutil.Engine(t, reactor.Config{IOThreads: 1, Backend: backend})
		for i := range 10 {
			ln, err := e.Listen("127.0.0.1:0", &echo.Handler{}, reactor.ListenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			port := ln.Addr().Port()
			ln.Close()
			// Keep the loop from entering the kernel again after the
			// teardown, which is when a ring applies a queued request.
			sock.BusyListenerLoop(ln, 20*time.Millisecond)
			<-ln.Done()
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			err = unix.Bind(fd, &unix.SockaddrInet4{Port: int(port), Addr: [4]byte{127, 0, 0, 1}})
			unix.Close(fd)
			if err != nil {
				t.Fatalf("%v, listener %d: binding its port right after Done: %v", backend, i, err)
			}
		}
	}
}

// TestRingStashKeepsOrderForSlowReaders: a reader that issues its next
// Read only every few milliseconds while the peer sends small writes:
// arrivals the multishot receive takes in between wait in the
// connection's stash, at four of them the receive stops (RecvPaused), and
// every byte still reaches OnRead once and in order; no buffer is left
// out.
func TestRingStashKeepsOrderForSlowReaders(t *testing.T) {
	requireRing(t)
	e := testutil.Engine(t, reactor.Config{IOThreads: 1, Backend: reactor.BackendURing, BufferSize: 4096})
	var (
		mu   sync.Mutex
		got  []byte
		srv  = make(chan *reactor.Conn, 1)
		done = make(chan struct{})
	)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) { srv <- c; c.Read() },
		onRead: func(c *reactor.Conn, b *reactor.Buffer, err error) {
			if err != nil {
				close(done)
				return
			}
			mu.Lock()
			for x := b; x != nil; x = x.Next() {
				got = append(got, x.Bytes()...)
			}
			mu.Unlock()
			b.Release()
		},
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	client := dial(t, ln.Addr().String())
	defer client.Close()
	c := wait(t, srv, "OnOpen")
	// Small writes, so that arrivals stay below a buffer and the receive
	// stays multishot; the reader asks only every 2 ms.
	const total, chunk = 256 << 10, 256
	msg := testutil.RandomBytes(total, 7)
	go func() {
		for off := 0; off < total; off += chunk {
			client.Write(msg[off : off+chunk])
			time.Sleep(50 * time.Microsecond)
		}
		client.CloseWrite()
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-done:
		default:
			if time.Now().After(deadline) {
				t.Fatal("the stream did not finish")
			}
			time.Sleep(2 * time.Millisecond)
			c.Read()
			continue
		}
		break
	}
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Equal(got, msg) {
		t.Fatalf("OnRead saw %d bytes, not the %d sent in order", len(got), total)
	}
	if n := e.Stats().RecvStashed; n == 0 {
		t.Fatal("no arrival waited for a Read: the stash path did not run")
	}
	if n := e.Stats().RecvPaused; n == 0 {
		t.Fatal("the stash never filled to its bound: the receive was never stopped")
	}
	c.Close()
	t.Logf("arrivals held for a later Read: %d", e.Stats().RecvStashed)
}
