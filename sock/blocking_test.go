package sock_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// goid is the current goroutine's id, read from its stack header: enough
// for a test to tell the worker's goroutine from the I/O thread's.
func goid() string {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	f := bytes.Fields(buf[:n])
	return string(f[1])
}

// TestSubmitResultsComeBackInOrderOnTheIOSide: every read submits work of
// a random length; the results reach done in submission order, never on
// the worker's goroutine, and never while another callback of the
// connection runs (the race detector checks that the handler's unlocked
// state is safe).
func TestSubmitResultsComeBackInOrderOnTheIOSide(t *testing.T) {
	const conns, perConn = 8, 200
	e := testutil.Engine(t, reactor.Config{IOThreads: 2, BlockingWorkers: 8})
	var faults testutil.Faults
	var doneAll sync.WaitGroup
	doneAll.Add(conns)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) {
			next, submitted := 0, 0 // touched by callbacks only: no lock
			rng := rand.New(rand.NewPCG(uint64(c.RemoteAddr().Port()), 1))
			var submitOne func()
			submitOne = func() {
				i := submitted
				submitted++
				d := time.Duration(rng.IntN(2000)) * time.Microsecond
				err := reactor.Submit(c, func() [2]string {
					time.Sleep(d)
					return [2]string{fmt.Sprint(i), goid()}
				}, func(c *reactor.Conn, v [2]string) {
					if v[0] != fmt.Sprint(next) {
						faults.Add("result %s delivered when %d was due", v[0], next)
					}
					if v[1] == goid() {
						faults.Add("done ran on the worker's goroutine")
					}
					next++
					if next == perConn {
						doneAll.Done()
					}
				})
				if err != nil {
					faults.Add("Submit: %v", err)
				}
			}
			for range perConn {
				submitOne()
			}
		},
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range conns {
		c := dial(t, ln.Addr().String())
		defer c.Close()
	}
	testutil.WaitGroup(t, &doneAll, 30*time.Second, "every result")
	faults.Report(t)
	// A function counts as completed when it returns, which is after it
	// posted its result: the last done can run before the last count.
	if !waitFor(10*time.Second, func() bool { return e.Stats().Blocking.Completed >= conns*perConn }) {
		t.Errorf("pool stats %+v, want %d completed", e.Stats().Blocking, conns*perConn)
	}
	if s := e.Stats().Blocking; s.Workers != 8 {
		t.Errorf("pool stats %+v, want 8 workers", s)
	}
}

// TestSubmitBusyPoolDoesNotStallEchoes: every worker is held by 200 ms
// of blocking work (and more waits in the queue) while other connections
// keep echoing: their round trips go on while the pool is full.
func TestSubmitBusyPoolDoesNotStallEchoes(t *testing.T) {
	const workers = 4
	e := testutil.Engine(t, reactor.Config{IOThreads: 2, BlockingWorkers: workers})
	release := make(chan struct{})
	var running atomic.Int32
	slow, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) {
			for range 3 * workers {
				reactor.Submit(c, func() int {
					running.Add(1)
					select {
					case <-release:
					case <-time.After(200 * time.Millisecond):
					}
					return 0
				}, func(*reactor.Conn, int) {})
			}
		},
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := listenEchoOn(t, e)
	sc := dial(t, slow.Addr().String())
	defer sc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for running.Load() < workers && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s := e.Stats().Blocking; s.Running != workers || s.Queued != 2*workers {
		t.Fatalf("pool not full: %+v", s)
	}
	// While every worker is held, echoes go on.
	c := dial(t, addr)
	defer c.Close()
	msg := []byte("ping through a full pool")
	got := make([]byte, len(msg))
	echoes := 0
	for e.Stats().Blocking.Running == workers && echoes < 10000 {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		echoes++
	}
	if echoes < 2 {
		t.Fatalf("%d echoes while the pool was full", echoes)
	}
	t.Logf("%d echoes while all %d workers were held", echoes, workers)
	close(release)
}

// listenEchoOn starts an echo listener on e.
func listenEchoOn(t *testing.T, e *reactor.Engine) (*reactor.Listener, string) {
	t.Helper()
	ln, err := e.Listen("127.0.0.1:0", &echo.Handler{Reads: 1}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ln, ln.Addr().String()
}

// TestSubmitDoneComesBeforeOnClose: a connection closed while its work
// runs waits for it; done runs (finding the connection closed) and
// OnClose comes after it.
func TestSubmitDoneComesBeforeOnClose(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	var order []string // callbacks only
	closed := make(chan []string, 1)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) {
			reactor.Submit(c, func() int { time.Sleep(100 * time.Millisecond); return 1 },
				func(c *reactor.Conn, v int) { order = append(order, fmt.Sprintf("done closed=%v", c.Closed())) })
			c.Abort()
		},
		onClose: func(c *reactor.Conn, err error) { closed <- append(order, "close") },
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, ln.Addr().String())
	defer c.Close()
	got := wait(t, closed, "OnClose")
	if fmt.Sprint(got) != "[done closed=true close]" {
		t.Fatalf("callbacks %v", got)
	}
}

// TestSubmitPanicClosesOnlyItsConnection: a panic in work closes its
// connection with a *PanicError; the engine goes on serving.
func TestSubmitPanicClosesOnlyItsConnection(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	closed := make(chan error, 1)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) {
			reactor.Submit(c, func() int { panic("work failed") }, func(*reactor.Conn, int) {
				closed <- errors.New("done called after a panic")
			})
		},
		onClose: func(c *reactor.Conn, err error) { closed <- err },
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The server may reset the connection before the client's connect has
	// returned, so the client may see the reset at Dial: that is fine.
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		defer c.Close()
	}
	var pe *sock.PanicError
	if err := wait(t, closed, "OnClose"); !errors.As(err, &pe) || pe.Value != "work failed" {
		t.Fatalf("OnClose got %v, want the work's panic", err)
	}
	_, addr := listenEchoOn(t, e)
	if err := echoOnce(addr, 1000, 3); err != nil {
		t.Fatalf("echo after the panic: %v", err)
	}
}

// BenchmarkEchoWhileBlockingPoolBusy reports the p99 of 64-byte echo
// round trips on one connection while every blocking worker is held by
// 200 ms calls (busy=1), and with the pool idle (busy=0).
func BenchmarkEchoWhileBlockingPoolBusy(b *testing.B) {
	for _, busy := range []bool{false, true} {
		b.Run(fmt.Sprintf("busy=%v", busy), func(b *testing.B) {
			e := testutil.Engine(b, reactor.Config{IOThreads: 2, BlockingWorkers: 8})
			stop := make(chan struct{})
			defer close(stop)
			if busy {
				var refill func(c *reactor.Conn)
				refill = func(c *reactor.Conn) {
					reactor.Submit(c, func() int {
						select {
						case <-stop:
						case <-time.After(200 * time.Millisecond):
						}
						return 0
					}, func(c *reactor.Conn, _ int) {
						select {
						case <-stop:
						default:
							refill(c)
						}
					})
				}
				ln, err := e.Listen("127.0.0.1:0", &funcHandler{onOpen: func(c *reactor.Conn) {
					for range 16 {
						refill(c)
					}
				}}, reactor.ListenOptions{})
				if err != nil {
					b.Fatal(err)
				}
				hc := dialB(b, ln.Addr().String())
				defer hc.Close()
			}
			ln, err := e.Listen("127.0.0.1:0", &echo.Handler{Reads: 1}, reactor.ListenOptions{})
			if err != nil {
				b.Fatal(err)
			}
			c := dialB(b, ln.Addr().String())
			defer c.Close()
			msg, got := make([]byte, 64), make([]byte, 64)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				c.Write(msg)
				if _, err := io.ReadFull(c, got); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			if busy {
				b.ReportMetric(float64(e.Stats().Blocking.Running), "workers-held")
			}
		})
	}
}

func dialB(b *testing.B, addr string) net.Conn {
	b.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	return c
}
