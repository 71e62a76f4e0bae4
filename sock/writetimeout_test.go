package sock_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// TestWriteTimeoutClosesAStalledConnection: a peer that never reads lets
// the server's writes fill both socket buffers and stall in the queue;
// with a write timeout of 500 ms the connection fails with
// ErrWriteTimeout, counted, its queued bytes released. A connection
// without the option, stalled the same way, is still open then.
func TestWriteTimeoutClosesAStalledConnection(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	timed := stallWriter(t, e, 500*time.Millisecond)
	untimed := stallWriter(t, e, 0)
	closesAlone(t, timed.closed, untimed.closed, sock.ErrWriteTimeout, "with a write timeout")
	if n := e.Stats().WriteTimeouts; n != 1 {
		t.Errorf("%d write timeouts counted, want 1", n)
	}
	untimed.c.Abort()
}

// TestWriteTimeoutSparesASlowReader: a reader that takes 64 KiB every
// 50 ms keeps the queue moving, so a write timeout of 1 s never fires,
// although the 4 MiB take over 3 s to read: the timeout is on progress,
// not on the whole write. (Its receive buffer is 256 KiB: with a small
// one the kernel reopens the window only through zero-window probes,
// whose back-off alone can pass a second.)
func TestWriteTimeoutSparesASlowReader(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	s := stallWriter(t, e, time.Second)
	buf := make([]byte, 64<<10)
	total := 0
	for total < stallBytes {
		time.Sleep(50 * time.Millisecond)
		n, err := io.ReadFull(s.peer, buf[:min(len(buf), stallBytes-total)])
		total += n
		if err != nil {
			t.Fatalf("read %d of %d bytes: %v", total, stallBytes, err)
		}
	}
	select {
	case err := <-s.closed:
		t.Fatalf("the connection closed while its reader kept reading: %v", err)
	default:
	}
	if n := e.Stats().WriteTimeouts; n != 0 {
		t.Errorf("%d write timeouts counted, want 0", n)
	}
}

// stallBytes is what stallWriter's server writes: more than the two
// socket buffers hold.
const stallBytes = 4 << 20

// stalledConn is a server connection that wrote stallBytes at open (a
// 64 KiB send buffer) to a peer that reads only when the test does.
type stalledConn struct {
	c      *reactor.Conn
	peer   net.Conn
	closed chan error
}

func stallWriter(t *testing.T, e *reactor.Engine, timeout time.Duration) *stalledConn {
	t.Helper()
	s := &stalledConn{closed: make(chan error, 1)}
	opened := make(chan *reactor.Conn, 1)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) {
			c.Write(make([]byte, stallBytes))
			opened <- c
		},
		onClose: func(_ *reactor.Conn, err error) { s.closed <- err },
	}, reactor.ListenOptions{ConnOptions: reactor.ConnOptions{WriteTimeout: timeout, SendBuffer: 64 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer.(*net.TCPConn).SetReadBuffer(256 << 10)
	peer.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { peer.Close() })
	s.peer = peer
	s.c = testutil.Await(t, opened, 5*time.Second, "the accept")
	return s
}
