package sock_test

import (
	"io"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// TestWritableEdgeDuringQueueing: a writer that meets "would block" and is
// preempted before it queues its write must not lose the EPOLLOUT edge
// that the peer's reading raises meanwhile (with edge triggering there is
// no second one). The hook widens that window to 20 ms; the client only
// reads, so nothing else would wake the connection.
func TestWritableEdgeDuringQueueing(t *testing.T) {
	undo := sock.SetWouldBlockHook(func() { time.Sleep(20 * time.Millisecond) })
	defer undo()
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	opened := make(chan *reactor.Conn, 1)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{onOpen: func(c *reactor.Conn) { opened <- c }}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	client := dial(t, ln.Addr().String())
	defer client.Close()
	client.SetDeadline(time.Now().Add(20 * time.Second))
	srv := wait(t, opened, "OnOpen")
	msg := make([]byte, 1<<20)
	const total = 32 << 20
	go func() {
		for i := 0; i < total/len(msg); i++ {
			if _, err := srv.Write(msg); err != nil {
				return
			}
		}
	}()
	if n, err := io.CopyN(io.Discard, client, total); err != nil {
		t.Fatalf("client read %d of %d bytes, then %v: the writable edge was lost", n, total, err)
	}
	srv.Close()
}
