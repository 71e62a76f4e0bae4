package sock_test

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
)

// TestDialEchoThroughEngine: the engine as client and as server.
func TestDialEchoThroughEngine(t *testing.T) {
	e, addr := listenEcho(t, reactor.Config{IOThreads: 2})
	dialEcho(t, e, addr, 1<<20, reactor.DialOptions{})
}

// dialEcho dials addr through e, writes size random bytes as two buffers,
// shuts its side and checks that every byte comes back; it returns the
// connection.
func dialEcho(t *testing.T, e *reactor.Engine, addr string, size int, o reactor.DialOptions) *reactor.Conn {
	t.Helper()
	msg := testutil.RandomBytes(size, uint64(size))
	got := make(chan []byte, 1)
	o.Timeout = 5 * time.Second
	c, err := e.Dial(addr, &funcHandler{
		onOpen: func(c *reactor.Conn) {
			c.Write(msg[:1000], msg[1000:])
			c.CloseWrite()
			c.Read()
		},
		onRead: collectUntilEOF(got),
	}, o)
	if err != nil {
		t.Fatal(err)
	}
	if b := wait(t, got, "the echo"); !bytes.Equal(b, msg) {
		t.Fatalf("echo through two engine connections to %s: %d bytes back, want %d identical", addr, len(b), len(msg))
	}
	return c
}

// TestShutdownClosesEverything: Shutdown with connections open and data
// moving closes each exactly once and leaves nothing behind (the engine
// helper checks counters, the package checks descriptors and goroutines).
func TestShutdownClosesEverything(t *testing.T) {
	e, err := reactor.New(testutil.WithTestBackend(reactor.Config{IOThreads: 2}))
	if err != nil {
		t.Fatal(err)
	}
	closes := make(chan error, 100)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) { c.Read() },
		onRead: func(c *reactor.Conn, b *reactor.Buffer, err error) {
			if err == nil {
				c.WriteBuffer(b)
				c.Read()
			}
		},
		onClose: func(c *reactor.Conn, err error) { closes <- err },
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var clients []net.Conn
	for i := 0; i < 20; i++ {
		c := dial(t, ln.Addr().String())
		defer c.Close()
		if err := echoOn(c, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	if err := e.Shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if n := len(closes); n != 20 {
		t.Fatalf("%d OnClose calls for 20 connections", n)
	}
	testutil.CheckZero(t, e)
	if _, err := e.Listen("127.0.0.1:0", &funcHandler{}, reactor.ListenOptions{}); !errors.Is(err, reactor.ErrShutdown) {
		t.Fatalf("Listen after Shutdown: %v, want ErrShutdown", err)
	}
}
