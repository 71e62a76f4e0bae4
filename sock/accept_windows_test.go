package sock_test

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// TestAcceptBacksOffWhenSocketsRunOut is Windows' TestAcceptBacksOffOnEMFILE:
// each accept needs a socket made in advance (WSASocket for AcceptEx), and
// when making one fails (out of sockets or memory; injected here, as
// neither Windows nor Wine can be made to run out on demand) the listener
// backs off, 5 ms doubling to 200 ms, instead of spinning or dying, and
// once sockets can be made again it accepts every client that waited in
// the kernel's queue.
func TestAcceptBacksOffWhenSocketsRunOut(t *testing.T) {
	var failing atomic.Bool
	var tries atomic.Int64
	restore := sock.SetSocketHook(func() error {
		tries.Add(1)
		if failing.Load() {
			return fmt.Errorf("injected: %w", windows.WSAENOBUFS)
		}
		return nil
	})
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	t.Cleanup(restore) // after the engine's own cleanup, which stops its threads
	ln, err := e.Listen("127.0.0.1:0", &echo.Handler{}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	failing.Store(true)

	// The accepts already posted take the first clients; re-posting each
	// fails, and the rest of the clients wait in the kernel's queue.
	clients := sock.AcceptOutstanding + 8
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range clients {
		conns = append(conns, dial(t, addr))
	}
	if !waitFor(5*time.Second, func() bool { return e.Stats().AcceptBackoff > 0 }) {
		t.Fatal("accept never backed off with WSASocket failing")
	}
	before, triesBefore := e.Stats().AcceptBackoff, tries.Load()
	time.Sleep(300 * time.Millisecond)
	spun, tried := e.Stats().AcceptBackoff-before, tries.Load()-triesBefore
	// 5 ms doubling to 200 ms: a handful in 300 ms, not thousands.
	if spun > 30 || tried > 30 {
		t.Fatalf("%d back-offs and %d socket attempts in 300 ms with WSASocket failing: accept is spinning", spun, tried)
	}
	if s := e.Stats(); s.ConnsOpen > int64(sock.AcceptOutstanding) {
		t.Fatalf("%d connections open with no socket to accept on, at most %d were posted", s.ConnsOpen, sock.AcceptOutstanding)
	}

	failing.Store(false)
	msg, got := testutil.RandomBytes(512, 3), make([]byte, 512)
	for i, c := range conns {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := testutil.RoundTrip(c, msg, got); err != nil {
			t.Fatalf("client %d of %d after sockets came back: %v", i, clients, err)
		}
	}
	if s := e.Stats(); s.ConnsOpen != int64(clients) {
		t.Errorf("%d connections open, want all %d clients", s.ConnsOpen, clients)
	}
	t.Logf("%d back-offs, %d socket attempts in 300 ms while failing", spun, tried)
}
