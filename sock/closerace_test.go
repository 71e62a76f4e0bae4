package sock_test

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
)

// TestLosingAbortReturnsOnlyOnceClosed: two Aborts race on each of many
// connections; the one told "already closed" writes at once, and that
// write must fail. (A loser used to return before the winner had set the
// closed bit, and the write was accepted.)
func TestLosingAbortReturnsOnlyOnceClosed(t *testing.T) {
	conns := 5000
	if testing.Short() {
		conns = 300
	}
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	var accepted, races atomic.Int32
	var done sync.WaitGroup
	done.Add(conns)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) {
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					if c.Abort() != nil {
						races.Add(1)
						if _, err := c.Write([]byte("x")); err == nil {
							accepted.Add(1)
						}
					}
				})
			}
			wg.Wait()
		},
		onClose: func(*reactor.Conn, error) { done.Done() },
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sem := make(chan struct{}, 64)
	for range conns {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				c.Read(make([]byte, 1))
				c.Close()
			}
		}()
	}
	testutil.WaitGroup(t, &done, 60*time.Second, "every OnClose")
	if n := accepted.Load(); n != 0 {
		t.Fatalf("%d of %d writes after a losing Abort were accepted", n, races.Load())
	}
}
