package sock_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
)

// TestDrainWaitsForConnectionsToClose: Drain closes the listener at once
// (a new connect is refused) and returns only when the open connections
// have closed on their own, each still echoing meanwhile; with one that
// never closes it gives up at its timeout, names the count, and Shutdown
// closes the rest.
func TestDrainWaitsForConnectionsToClose(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	ln, err := e.Listen("127.0.0.1:0", &echo.Handler{Reads: 1}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := echoOn(c, []byte("before")); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	drained := make(chan error, 1)
	go func() { drained <- e.Drain(10 * time.Second) }()
	<-ln.Done()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("a connect succeeded after Drain closed the listener")
	}
	for i, c := range clients {
		select {
		case err := <-drained:
			t.Fatalf("Drain returned %v with %d connections still open", err, len(clients)-i)
		case <-time.After(20 * time.Millisecond):
		}
		if err := echoOn(c, []byte("during the drain")); err != nil {
			t.Fatalf("an open connection during the drain: %v", err)
		}
		c.Close()
	}
	if err := testutil.Await(t, drained, 5*time.Second, "Drain, once every connection closed"); err != nil {
		t.Fatalf("Drain after every connection closed: %v", err)
	}

	// One that never closes: Drain gives up and says how many.
	ln2, err := e.Listen("127.0.0.1:0", &echo.Handler{Reads: 1}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stuck, err := net.Dial("tcp", ln2.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	if err := echoOn(stuck, []byte("stays")); err != nil {
		t.Fatal(err)
	}
	if err := e.Drain(100 * time.Millisecond); err == nil || !strings.HasSuffix(err.Error(), "still open after draining for 100ms: 1") {
		t.Fatalf("Drain with a connection that stays: %v, want the count", err)
	}
}
