package sock_test

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
)

// TestAcceptBacksOffOnEMFILE: with the descriptor limit reached, accept
// fails with EMFILE; the listener backs off instead of spinning or dying,
// and accepts every waiting client once descriptors are available again.
// (Issue 7 adds the full scenario in a re-executed child; this is the
// in-process core of it.)
func TestAcceptBacksOffOnEMFILE(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	ln, err := e.Listen("127.0.0.1:0", &echo.Handler{}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const clients = 8
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for i := 0; i < clients; i++ { // every client's socket exists before the limit drops
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
	}
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(testutil.FDs()) // no descriptor to spare
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
	sa := &unix.SockaddrInet4{Port: int(ln.Addr().Port()), Addr: [4]byte{127, 0, 0, 1}}
	for _, fd := range fds {
		if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
			restore()
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.Stats().AcceptBackoff == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	backoffs := e.Stats().AcceptBackoff
	time.Sleep(100 * time.Millisecond)
	spun := e.Stats().AcceptBackoff - backoffs
	restore()
	if backoffs == 0 {
		t.Fatal("accept never backed off at the descriptor limit")
	}
	if spun > 30 { // 5 ms doubling to 200 ms: a handful in 100 ms, not thousands
		t.Fatalf("%d back-offs in 100 ms at the limit: accept is spinning", spun)
	}
	start := time.Now()
	for e.Stats().Accepts < clients && time.Since(start) < 5*time.Second {
		time.Sleep(time.Millisecond)
	}
	if n := e.Stats().Accepts; n < clients {
		t.Fatalf("%d of %d clients accepted after the limit was lifted: the listener stopped", n, clients)
	}
	t.Logf("%d back-offs at the limit; all %d accepted %v after it was lifted", e.Stats().AcceptBackoff, clients, time.Since(start).Round(time.Millisecond))
}
