package sock_test

import (
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/seq"
)

// BenchmarkWrite measures Conn.Write from one goroutine on one
// connection, completion included: the timer stops once OnWrite has run
// for every write. A client drains the socket. The buffers are 64 bytes
// each, so the figure is the cost of the call and its system calls, not
// of copying. At most benchWindow writes are in flight: the engine queues
// whatever the kernel does not take, without bound, and a writer that ran
// ahead would measure the queue's growth, not the write. Allocations are
// counted for the whole process, engine threads and client included.
func BenchmarkWrite(b *testing.B) {
	for _, bufs := range []int{1, 16, 2000} {
		b.Run(strconv.Itoa(bufs)+"x64B", func(b *testing.B) { benchmarkWrite(b, bufs, 64) })
	}
}

// benchWindow bounds BenchmarkWrite's writes in flight: enough to keep
// loopback's socket buffers full (256 × 128,000 B is 32 MB).
const benchWindow = 256

func benchmarkWrite(b *testing.B, nbufs, size int) {
	e := testutil.Engine(b, reactor.Config{IOThreads: 1})
	opened := make(chan *reactor.Conn, 1)
	closed := make(chan struct{})
	var done, want atomic.Int64
	var failed atomic.Bool // the first bad completion is reported, not every one
	all := make(chan struct{}, 1)
	// A slot is taken before each Write and freed by its completion, which
	// therefore never blocks.
	inflight := make(chan struct{}, benchWindow)
	ln, err := e.Listen("127.0.0.1:0", &writeFuncHandler{
		funcHandler: funcHandler{
			onOpen:  func(c *reactor.Conn) { opened <- c },
			onClose: func(c *reactor.Conn, err error) { close(closed) },
		},
		onWrite: func(c *reactor.Conn, s seq.Number, n int, err error) {
			if (err != nil || n != nbufs*size) && !failed.Swap(true) {
				b.Errorf("write %d completed with %d bytes, error %v", s, n, err)
			}
			<-inflight
			if done.Add(1) == want.Load() {
				all <- struct{}{}
			}
		},
	}, reactor.ListenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	const limit = 5 * time.Minute
	client.SetDeadline(time.Now().Add(limit))
	drained := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, client)
		drained <- err
	}()
	srv := awaitB(b, opened, "OnOpen")
	// Past the limit the connection is aborted: its queued writes complete
	// with errors, freeing a writer blocked on the window, whose next Write
	// fails.
	watchdog := time.AfterFunc(limit, func() { srv.Abort() })
	defer watchdog.Stop()

	bufs := make([][]byte, nbufs)
	for i := range bufs {
		bufs[i] = make([]byte, size) // apart in memory, never modified
	}
	writeAll := func(n int) {
		want.Add(int64(n))
		for range n {
			inflight <- struct{}{}
			if _, err := srv.Write(bufs...); err != nil {
				b.Fatal(err)
			}
		}
		awaitB(b, all, "the completions")
	}
	writeAll(1000) // warm the pools and the queues

	b.SetBytes(int64(nbufs * size))
	b.ReportAllocs()
	b.ResetTimer()
	writeAll(b.N)
	b.StopTimer()

	srv.Close()
	if err := awaitB(b, drained, "the client's EOF"); err != nil {
		b.Fatal(err)
	}
	awaitB(b, closed, "OnClose")
}

// awaitB is wait for a benchmark, with a minute's bound.
func awaitB[T any](b *testing.B, ch <-chan T, what string) T {
	b.Helper()
	return testutil.Await(b, ch, time.Minute, what)
}
