package sock_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// TestDialTimeout: a connect that cannot finish (the listener's accept
// queue is full, so the kernel drops the SYN) fails with
// ErrConnectTimeout after the timeout, and closes its socket.
func TestDialTimeout(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	addr, cleanup := fullListener(t)
	defer cleanup()
	failed := make(chan error, 1)
	start := time.Now()
	const timeout = 100 * time.Millisecond
	_, err := e.Dial(addr, &funcHandler{
		onOpen:  func(c *reactor.Conn) { t.Error("connected through a full accept queue") },
		onClose: func(c *reactor.Conn, err error) { failed <- err },
	}, reactor.DialOptions{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	err = wait(t, failed, "the connect timeout")
	var de *sock.DialError
	if !errors.As(err, &de) || !errors.Is(err, sock.ErrConnectTimeout) {
		t.Fatalf("close reason %v, want a *DialError wrapping ErrConnectTimeout", err)
	}
	if el := time.Since(start); el < timeout {
		t.Fatalf("timed out after %v, before the %v asked", el, timeout)
	}
}

// TestCloseDuringConnect: a connection closed before its connect finished
// refuses writes with ErrNotConnected first, reports a *DialError to
// OnClose, and never counts as open.
func TestCloseDuringConnect(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	addr, cleanup := fullListener(t)
	defer cleanup()
	closed := make(chan error, 1)
	c, err := e.Dial(addr, &funcHandler{
		onOpen:  func(c *reactor.Conn) { t.Error("connected through a full accept queue") },
		onClose: func(c *reactor.Conn, err error) { closed <- err },
	}, reactor.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("early")); !errors.Is(err, sock.ErrNotConnected) {
		t.Fatalf("Write while connecting: %v, want ErrNotConnected", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	var de *sock.DialError
	if err := wait(t, closed, "OnClose"); !errors.As(err, &de) {
		t.Fatalf("close reason %v, want a *DialError", err)
	}
	if n := e.Stats().ConnsOpen; n != 0 {
		t.Fatalf("ConnsOpen = %d after a connect closed before it finished", n)
	}
}
