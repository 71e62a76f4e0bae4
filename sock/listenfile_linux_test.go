package sock_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// fileOf returns the *os.File of a Go net listener or connection, and
// closes the original: from then on only the file holds the socket.
func fileOf(t *testing.T, c interface {
	File() (*os.File, error)
	Close() error
}) *os.File {
	t.Helper()
	f, err := c.File()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	t.Cleanup(func() { f.Close() })
	return f
}

// TestListenFileTakesInheritedListeners: a TCP and a Unix-domain
// listening socket made by Go's net are served by the engine through
// ListenFile, which reports their address and path; the caller's file can
// be closed at once; Close leaves the Unix socket's file, which the engine
// did not make.
func TestListenFileTakesInheritedListeners(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})

	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := tl.Addr().String()
	f := fileOf(t, tl.(*net.TCPListener))
	ln, err := e.ListenFile(f, &echo.Handler{Reads: 1}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.Close() // the engine holds its own duplicate
	if ln.Addr().String() != addr || ln.Path() != "" {
		t.Fatalf("the inherited TCP listener says %v %q, want %s", ln.Addr(), ln.Path(), addr)
	}
	if err := echoOnce(addr, 100<<10, 1); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	<-ln.Done()

	path := filepath.Join(t.TempDir(), "inherited.sock")
	ul, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ul.(*net.UnixListener).SetUnlinkOnClose(false)
	uln, err := e.ListenFile(fileOf(t, ul.(*net.UnixListener)), &echo.Handler{Reads: 1}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if uln.Path() != path {
		t.Fatalf("the inherited Unix listener's path %q, want %q", uln.Path(), path)
	}
	if err := echoOverUnix(path, 100<<10, 2); err != nil {
		t.Fatal(err)
	}
	uln.Close()
	<-uln.Done()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the file of a socket the engine did not make, after Close: %v, want it left", err)
	}
}

// TestListenFileRefusals: a file that is not a listening TCP or Unix
// stream socket is refused with ErrNotListener, and options that only a
// socket's maker decides are refused; nothing is left open.
func TestListenFileRefusals(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	conn, err := net.Dial("tcp", server.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]*os.File{
		"/dev/null":              devNull,
		"a UDP socket":           fileOf(t, udp.(*net.UDPConn)),
		"a connected TCP socket": fileOf(t, conn.(*net.TCPConn)),
	} {
		if _, err := e.ListenFile(f, &echo.Handler{}, reactor.ListenOptions{}); !errors.Is(err, sock.ErrNotListener) {
			t.Errorf("ListenFile on %s: %v, want ErrNotListener", name, err)
		}
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := fileOf(t, tl.(*net.TCPListener))
	for _, o := range []reactor.ListenOptions{{Backlog: 10}, {ReusePort: true}, {UnixMode: 0o600}} {
		if _, err := e.ListenFile(f, &echo.Handler{}, o); err == nil {
			t.Errorf("ListenFile with %+v: accepted, want a refusal", o)
		}
	}
	if s := e.Stats(); s.FDs != 0 {
		t.Fatalf("%d descriptors held after the refusals", s.FDs)
	}
}

// TestListenerHandOff: a listener hands its socket to another engine
// (as a process hands it to its successor) while clients keep
// connecting. The old one closes; no connect is refused or lost, the new
// engine serves what comes after, and a Unix-domain socket keeps its file.
func TestListenerHandOff(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			old := testutil.Engine(t, reactor.Config{IOThreads: 2})
			next := testutil.Engine(t, reactor.Config{IOThreads: 2})
			addr, target := "127.0.0.1:0", ""
			if network == "unix" {
				target = filepath.Join(t.TempDir(), "handoff.sock")
				addr = "unix:" + target
			}
			ln, err := old.Listen(addr, &echo.Handler{Reads: 1}, reactor.ListenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if network == "tcp" {
				target = ln.Addr().String()
			}

			// Clients connect and echo throughout, bounded in count.
			var failures atomic.Int64
			var echoed atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Go(func() {
					for n := 0; n < 2000; n++ {
						select {
						case <-stop:
							return
						default:
						}
						if err := echoOnceOn(network, target, 64, uint64(i*10000+n)); err != nil {
							failures.Add(1)
							t.Errorf("client %d, connect %d across the hand-off: %v", i, n, err)
							return
						}
						echoed.Add(1)
					}
				})
			}
			waitFor(5*time.Second, func() bool { return echoed.Load() > 100 })

			f, err := ln.File()
			if err != nil {
				t.Fatal(err)
			}
			nln, err := next.ListenFile(f, &echo.Handler{Reads: 1}, reactor.ListenOptions{})
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			ln.Close()
			<-ln.Done()
			before := next.Stats().ConnsTotal
			waitFor(5*time.Second, func() bool { return next.Stats().ConnsTotal > before+100 })
			close(stop)
			wg.Wait()
			if failures.Load() != 0 {
				t.Fatalf("%d clients failed across the hand-off", failures.Load())
			}
			if got := next.Stats().ConnsTotal - before; got < 100 {
				t.Fatalf("the new engine accepted %d connections after the old listener closed, want 100 or more", got)
			}
			if network == "unix" {
				if _, err := os.Stat(target); err != nil {
					t.Fatalf("the socket's file after the old listener closed: %v, want it kept for the new one", err)
				}
			}
			nln.Close()
		})
	}
}

// TestAcceptSurvivesBlockingMode: another holder of the listening
// socket's open file puts it in blocking mode (as os/exec does when it
// passes a file from net.TCPListener.File to a child); the engine puts it back before accepting,
// so its one I/O thread never blocks in accept4 and keeps serving, and
// it counts the repair.
func TestAcceptSurvivesBlockingMode(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	ln, err := e.Listen("127.0.0.1:0", &echo.Handler{Reads: 1}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for round := range 3 {
		// What os/exec does to a file from net.TCPListener.File when it
		// passes it to a child (its Fd sets blocking mode).
		if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- echoOnce(ln.Addr().String(), 1000, uint64(round)) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: no echo in 10 s: the I/O thread is held in a blocking accept", round)
		}
	}
	// A burst that came after a flip and found nothing to accept counts
	// too, and one already looping when the flip came is freed by the
	// receive timeout instead, so rounds and repairs need not match one
	// for one.
	if n := e.Stats().AcceptModeRestored; n < 1 {
		t.Fatalf("AcceptModeRestored %d after 3 rounds of blocking mode, want some", n)
	}
}
