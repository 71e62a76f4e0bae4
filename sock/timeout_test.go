package sock_test

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// readTimeoutSlack is how late this suite lets a read timeout fire. The
// filter fires on the loop's timer (millisecond resolution) and closes in
// the next delivery, which on an idle machine is within a few
// milliseconds; the bound is wide because CI machines are shared and the
// race detector slows every loop turn.
const readTimeoutSlack = 750 * time.Millisecond

// TestReadTimeoutClosesIdleConnections: 1,000 idle connections with a 1 s
// read timeout. Each client, timing from before its connect, sees its
// connection closed no sooner than 1 s and within the slack after; the
// server's OnClose gets ErrReadTimeout; then nothing is left.
func TestReadTimeoutClosesIdleConnections(t *testing.T) {
	conns := 1000
	if testing.Short() {
		conns = 200
	}
	const timeout = time.Second
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	var wrong atomic.Int32
	var closed sync.WaitGroup
	closed.Add(conns)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) { c.Read() },
		onClose: func(c *reactor.Conn, err error) {
			if !errors.Is(err, sock.ErrReadTimeout) {
				wrong.Add(1)
			}
			closed.Done()
		},
	}, reactor.ListenOptions{ConnOptions: reactor.ConnOptions{ReadTimeout: timeout}})
	if err != nil {
		t.Fatal(err)
	}
	var early, late, failed atomic.Int32
	var worst atomic.Int64
	var clients sync.WaitGroup
	for range conns {
		t0 := time.Now()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients.Go(func() {
			defer c.Close()
			c.SetReadDeadline(t0.Add(timeout + 10*time.Second))
			if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				failed.Add(1)
				return
			}
			idle := time.Since(t0)
			switch {
			case idle < timeout:
				early.Add(1)
			case idle > timeout+readTimeoutSlack:
				late.Add(1)
			}
			for {
				w := worst.Load()
				if int64(idle) <= w || worst.CompareAndSwap(w, int64(idle)) {
					break
				}
			}
		})
	}
	testutil.WaitGroup(t, &clients, 30*time.Second, "every client")
	testutil.WaitGroup(t, &closed, 30*time.Second, "every close")
	if n := early.Load() + late.Load() + wrong.Load() + failed.Load(); n != 0 {
		t.Fatalf("of %d: %d closed before the timeout, %d later than the slack, %d for another reason, %d clients saw no close",
			conns, early.Load(), late.Load(), wrong.Load(), failed.Load())
	}
	t.Logf("%d connections closed by the 1 s timeout, the last %v after its connect",
		conns, time.Duration(worst.Load()).Round(time.Millisecond))
	if got := e.Stats().ReadTimeouts; got != int64(conns) {
		t.Fatalf("Stats.ReadTimeouts %d, want %d", got, conns)
	}
}

// TestReadTimeoutRearmedByEachArrival: bytes every 200 ms keep a
// connection with a 500 ms timeout open; once they stop, it closes no
// sooner than 500 ms after the last.
func TestReadTimeoutRearmedByEachArrival(t *testing.T) {
	const timeout = 500 * time.Millisecond
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	var last atomic.Int64 // when the server last read, ns since start
	start := time.Now()
	closed := make(chan time.Duration, 1)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) { c.Read() },
		onRead: func(c *reactor.Conn, b *reactor.Buffer, err error) {
			if b != nil {
				b.Release()
				last.Store(int64(time.Since(start)))
				c.Read()
			}
		},
		onClose: func(c *reactor.Conn, err error) {
			if !errors.Is(err, sock.ErrReadTimeout) {
				t.Errorf("closed with %v", err)
			}
			closed <- time.Since(start) - time.Duration(last.Load())
		},
	}, reactor.ListenOptions{ConnOptions: reactor.ConnOptions{ReadTimeout: timeout}})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, ln.Addr().String())
	defer c.Close()
	for range 8 {
		if _, err := c.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-closed:
			t.Fatal("closed while bytes kept arriving")
		case <-time.After(200 * time.Millisecond):
		}
	}
	idle := wait(t, closed, "OnClose")
	if idle < timeout || idle > timeout+readTimeoutSlack {
		t.Fatalf("closed %v after the last arrival, want %v to %v", idle, timeout, timeout+readTimeoutSlack)
	}
}

// TestOnReadTimeoutDecides: the callback keeps the connection the first
// time and lets it close the second.
func TestOnReadTimeoutDecides(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	var calls atomic.Int32
	start := time.Now()
	closed := make(chan time.Duration, 1)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen:  func(c *reactor.Conn) { c.Read() },
		onClose: func(c *reactor.Conn, err error) { closed <- time.Since(start) },
	}, reactor.ListenOptions{ConnOptions: reactor.ConnOptions{
		ReadTimeout:   timeout,
		OnReadTimeout: func(c *reactor.Conn) bool { return calls.Add(1) == 1 },
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, ln.Addr().String())
	defer c.Close()
	took := wait(t, closed, "OnClose")
	if calls.Load() != 2 || took < 2*timeout {
		t.Fatalf("%d calls, closed after %v; want 2 calls and at least %v", calls.Load(), took, 2*timeout)
	}
}

// TestReadTimeoutNeverFiresAfterClose: connections closed around their
// deadline, and an engine shut down before it: the decision callback
// never runs for a connection whose OnClose has run, nor after Shutdown.
func TestReadTimeoutNeverFiresAfterClose(t *testing.T) {
	const conns, timeout = 200, 200 * time.Millisecond
	cfg := testutil.WithTestBackend(reactor.Config{IOThreads: 2})
	e, err := reactor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	closedSet := map[*reactor.Conn]bool{}
	var after, afterShutdown atomic.Int32
	var shut atomic.Bool
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) {
			c.Read()
			// Half close themselves just before, at or just after the
			// deadline; the rest are open at Shutdown.
			if c.RemoteAddr().Port()%2 == 0 {
				d := timeout - 5*time.Millisecond + time.Duration(c.RemoteAddr().Port()%10)*time.Millisecond
				time.AfterFunc(d, func() { c.Close() })
			}
		},
		onClose: func(c *reactor.Conn, err error) {
			mu.Lock()
			closedSet[c] = true
			mu.Unlock()
		},
	}, reactor.ListenOptions{ConnOptions: reactor.ConnOptions{
		ReadTimeout: timeout,
		OnReadTimeout: func(c *reactor.Conn) bool {
			mu.Lock()
			if closedSet[c] {
				after.Add(1)
			}
			mu.Unlock()
			if shut.Load() {
				afterShutdown.Add(1)
			}
			return true // keep them: the timer runs on until close
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var clients []net.Conn
	for range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	time.Sleep(3 * timeout)
	if err := e.Shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	shut.Store(true)
	time.Sleep(2 * timeout)
	for _, c := range clients {
		c.Close()
	}
	testutil.CheckZero(t, e)
	if after.Load() != 0 || afterShutdown.Load() != 0 {
		t.Fatalf("the timeout fired %d times after OnClose and %d times after Shutdown", after.Load(), afterShutdown.Load())
	}
}
