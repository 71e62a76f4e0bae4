package sock_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// TestIdleConnectionHoldsNoWriteQueue: a connection keeps a write queue
// only while writes wait in it (an emptied queue goes back to a pool), so
// 10,000 idle connections that each echoed once hold none; one whose peer
// stops reading keeps its queue.
func TestIdleConnectionHoldsNoWriteQueue(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	conns := make(chan *reactor.Conn, 2)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) { conns <- c; c.Read() },
		onRead: echoRead,
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	holds := func(c *reactor.Conn, want bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for sock.HoldsWriteQueue(c) != want {
			if time.Now().After(deadline) {
				t.Fatalf("holds a write queue: %t, want %t", !want, want)
			}
			time.Sleep(time.Millisecond)
		}
	}

	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	c := <-conns
	msg := bytes.Repeat([]byte("q"), 64)
	got := make([]byte, len(msg))
	for range 100 {
		if _, err := idle.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(idle, got); err != nil {
			t.Fatal(err)
		}
	}
	holds(c, false)

	// A peer that sends 8 MiB and reads nothing: the echoes back up
	// past the socket buffers into the queue, which stays.
	stuck, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	c = <-conns
	go stuck.Write(make([]byte, 8<<20)) // ends when stuck closes
	holds(c, true)
}
