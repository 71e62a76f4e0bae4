package sock_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// funcHandler adapts functions to reactor.Handler; nil ones do nothing
// (a nil onRead releases the buffer).
type funcHandler struct {
	onOpen  func(c *reactor.Conn)
	onRead  func(c *reactor.Conn, b *reactor.Buffer, err error)
	onClose func(c *reactor.Conn, err error)
}

func (h *funcHandler) OnOpen(c *reactor.Conn) {
	if h.onOpen != nil {
		h.onOpen(c)
	}
}

func (h *funcHandler) OnRead(c *reactor.Conn, b *reactor.Buffer, err error) {
	if h.onRead != nil {
		h.onRead(c, b, err)
	} else if b != nil {
		b.Release()
	}
}

func (h *funcHandler) OnClose(c *reactor.Conn, err error) {
	if h.onClose != nil {
		h.onClose(c, err)
	}
}

// echoRead is an OnRead that echoes each buffer and reads on, and closes
// at end of stream.
func echoRead(c *reactor.Conn, b *reactor.Buffer, err error) {
	if err != nil {
		c.Close()
		return
	}
	c.WriteBuffer(b)
	c.Read()
}

// collectUntilEOF is an OnRead that gathers a connection's bytes and,
// at EOF, sends them on got and closes the connection.
func collectUntilEOF(got chan<- []byte) func(c *reactor.Conn, b *reactor.Buffer, err error) {
	var in []byte
	return func(c *reactor.Conn, b *reactor.Buffer, err error) {
		if err != nil {
			got <- in
			c.Close()
			return
		}
		for x := b; x != nil; x = x.Next() {
			in = append(in, x.Bytes()...)
		}
		b.Release()
		c.Read()
	}
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c.(*net.TCPConn)
}

// wait returns the next value from ch, failing t after 20 s.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	return testutil.Await(t, ch, 20*time.Second, what)
}

// TestHalfCloseByPeer: the client writes N bytes and shuts down its write
// side; the server reads all N, then EOF; the client gets all N back, then
// EOF.
func TestHalfCloseByPeer(t *testing.T) {
	_, addr := listenEcho(t, reactor.Config{IOThreads: 2})
	for _, n := range []int{1, 1000, 1 << 20} {
		c := dial(t, addr)
		msg := testutil.RandomBytes(n, uint64(n))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("n=%d: reading the echo: %v", n, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("n=%d: got %d bytes back, want the %d sent", n, len(got), n)
		}
		c.Close()
	}
}

// TestCloseWriteByEngine: the server writes N bytes and shuts down its
// write side; the client reads N bytes then EOF, and the server still
// reads what the client sends afterwards.
func TestCloseWriteByEngine(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	const n = 3 << 20
	msg := testutil.RandomBytes(n, 3)
	got := make(chan []byte, 1)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) {
			if _, err := c.Write(msg[:n/2], msg[n/2:]); err != nil {
				t.Error(err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Error(err)
			}
			if _, err := c.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Write after CloseWrite: %v, want net.ErrClosed", err)
			}
			c.Read()
		},
		onRead: collectUntilEOF(got),
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, ln.Addr().String())
	defer c.Close()
	all, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(all, msg) {
		t.Fatalf("client read %d bytes (err %v), want %d then EOF", len(all), err, n)
	}
	c.Write([]byte("after"))
	c.CloseWrite()
	if s := wait(t, got, "the server's EOF"); string(s) != "after" {
		t.Fatalf("server read %q after its CloseWrite, want %q", s, "after")
	}
}

// TestPeerResetWithQueuedData: the peer resets the connection (SO_LINGER
// 0) while the server has megabytes queued for it: exactly one OnClose,
// with an error, and every queued buffer back in the pool.
func TestPeerResetWithQueuedData(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	queued := make(chan struct{})
	closed := make(chan error, 4)
	var closes atomic.Int32
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) {
			for i := 0; i < 2048; i++ { // 32 MiB: more than loopback's socket buffers hold
				b := e.Buffers().Get()
				b.Commit(b.Cap())
				if _, err := c.WriteBuffer(b); err != nil {
					t.Error(err)
				}
			}
			c.Read()
			close(queued)
		},
		onClose: func(c *reactor.Conn, err error) {
			closes.Add(1)
			closed <- err
		},
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, ln.Addr().String())
	wait(t, queued, "the server to queue its writes")
	if s := e.Stats(); s.BuffersOut() == 0 {
		t.Fatalf("nothing queued: buffers out %d", s.BuffersOut())
	}
	c.SetLinger(0)
	c.Close()
	if err := wait(t, closed, "OnClose"); err == nil {
		t.Fatal("OnClose after a peer reset reported no error")
	}
	time.Sleep(50 * time.Millisecond) // room for a wrong second OnClose
	if n := closes.Load(); n != 1 {
		t.Fatalf("OnClose ran %d times, want 1", n)
	}
	if s := e.Stats(); s.BuffersOut() != 0 {
		t.Fatalf("buffers out after the reset: %d", s.BuffersOut())
	}
}

// TestDialClosedPort: a connect to a port nobody listens on fails, and
// leaves no descriptor behind.
func TestDialClosedPort(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	before := testutil.FDs()
	for i := 0; i < 50; i++ {
		failed := make(chan error, 1)
		_, err := e.Dial(addr, &funcHandler{
			onOpen:  func(c *reactor.Conn) { t.Error("connected to a closed port") },
			onClose: func(c *reactor.Conn, err error) { failed <- err },
		}, reactor.DialOptions{Timeout: 5 * time.Second})
		if err == nil {
			err = wait(t, failed, "the failed connect's OnClose")
		}
		var de *sock.DialError
		if !errors.As(err, &de) {
			t.Fatalf("dial to a closed port: %v, want a *sock.DialError", err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for e.Stats().FDs != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := e.Stats().FDs; n != 0 {
		t.Fatalf("engine holds %d descriptors after failed connects", n)
	}
	if after := testutil.FDs(); after != before {
		t.Fatalf("process descriptors %d before the connects, %d after", before, after)
	}
}

// TestOperationsAfterClose: every operation on a closed connection fails
// with an error that matches net.ErrClosed.
func TestOperationsAfterClose(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	closed := make(chan *reactor.Conn, 1)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen:  func(c *reactor.Conn) { c.Close() },
		onClose: func(c *reactor.Conn, err error) { closed <- c },
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cl := dial(t, ln.Addr().String())
	defer cl.Close()
	c := wait(t, closed, "OnClose")
	_, werr := c.Write([]byte("x"))
	b := e.Buffers().Get()
	b.Append([]byte("x"))
	_, wberr := c.WriteBuffer(b) // takes b, and releases it on failure
	errs := map[string]error{
		"Read": c.Read(), "Write": werr, "WriteBuffer": wberr, "CloseWrite": c.CloseWrite(), "Close": c.Close(), "Abort": c.Abort(),
	}
	for op, err := range errs {
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s after close: %v, want net.ErrClosed", op, err)
		}
	}
	if n := e.Stats().BuffersOut(); n != 0 {
		t.Errorf("%d buffers out after a refused WriteBuffer, want 0", n)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second listener Close: %v, want net.ErrClosed", err)
	}
}

// TestPanicInCallbackClosesOnlyThatConnection: a handler that panics
// loses its connection, with the panic as the reason; the others echo on.
func TestPanicInCallbackClosesOnlyThatConnection(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	reasons := make(chan error, 8)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) { c.Read() },
		onRead: func(c *reactor.Conn, b *reactor.Buffer, err error) {
			if err != nil {
				c.Close()
				return
			}
			if b.Bytes()[0] == 'P' {
				b.Release()
				panic("handler bug")
			}
			c.WriteBuffer(b)
			c.Read()
		},
		onClose: func(c *reactor.Conn, err error) { reasons <- err },
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	good := dial(t, addr)
	defer good.Close()
	bad := dial(t, addr)
	defer bad.Close()
	bad.Write([]byte("P"))
	var pe *sock.PanicError
	if err := wait(t, reasons, "the panicking connection's OnClose"); !errors.As(err, &pe) || pe.Value != "handler bug" {
		t.Fatalf("close reason %v, want a *sock.PanicError carrying the panic", err)
	}
	if _, err := io.ReadAll(bad); err == nil {
		// EOF or reset: either way the connection is gone.
	}
	for i := 0; i < 100; i++ {
		if err := echoOn(good, []byte("still here")); err != nil {
			t.Fatalf("the other connection stopped echoing: %v", err)
		}
	}
	if n := e.Stats().Panics; n != 1 {
		t.Fatalf("Stats().Panics = %d, want 1", n)
	}
}

// echoOn sends msg on c and reads the same bytes back.
func echoOn(c net.Conn, msg []byte) error {
	return testutil.RoundTrip(c, msg, make([]byte, len(msg)))
}

// TestGracefulCloseFlushesQueue: Close with megabytes still queued sends
// every byte, then EOF.
func TestGracefulCloseFlushesQueue(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	const n = 16 << 20
	msg := testutil.RandomBytes(n, 5)
	closed := make(chan error, 1)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) {
			c.Write(msg)
			if err := c.Close(); err != nil {
				t.Error(err)
			}
		},
		onClose: func(c *reactor.Conn, err error) { closed <- err },
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, ln.Addr().String())
	defer c.Close()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("read %d bytes (err %v), want all %d then EOF", len(got), err, n)
	}
	if err := wait(t, closed, "OnClose"); err != nil {
		t.Fatalf("graceful close reported %v", err)
	}
}

// TestGracefulCloseAbortsAfterLinger: a peer that never reads cannot hold
// a closing connection past the linger bound: it is aborted with
// ErrLingerTimeout and its queued buffers go back to the pool.
func TestGracefulCloseAbortsAfterLinger(t *testing.T) {
	const linger = 100 * time.Millisecond
	e := testutil.Engine(t, reactor.Config{IOThreads: 1, Linger: linger})
	closed := make(chan error, 1)
	var start time.Time
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) {
			for i := 0; i < 2048; i++ { // 32 MiB: more than the socket buffers hold
				b := e.Buffers().Get()
				b.Commit(b.Cap())
				c.WriteBuffer(b)
			}
			start = time.Now()
			c.Close()
		},
		onClose: func(c *reactor.Conn, err error) { closed <- err },
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, ln.Addr().String()) // never reads
	defer c.Close()
	err = wait(t, closed, "OnClose after the linger bound")
	if !errors.Is(err, sock.ErrLingerTimeout) {
		t.Fatalf("close reason %v, want ErrLingerTimeout", err)
	}
	if el := time.Since(start); el < linger {
		t.Fatalf("aborted after %v, before the %v linger bound", el, linger)
	}
	if n := e.Stats().BuffersOut(); n != 0 {
		t.Fatalf("%d buffers still out after the abort", n)
	}
}
