package sock_test

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// TestFDReuseCanary: connection A is aborted with writes queued and a
// goroutine still writing to it; connection B is then given A's
// descriptor number. No byte meant for A reaches B's peer, and every later
// write to A fails with net.ErrClosed.
func TestFDReuseCanary(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	opened := make(chan *reactor.Conn, 2)
	closedA := make(chan struct{})
	var mu sync.Mutex
	var connA *reactor.Conn
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) {
			c.Read()
			opened <- c
		},
		onRead: echoRead,
		onClose: func(c *reactor.Conn, err error) {
			mu.Lock()
			defer mu.Unlock()
			if c == connA {
				close(closedA)
			}
		},
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	clientA := dial(t, addr)
	defer clientA.Close()
	a := wait(t, opened, "A's OnOpen")
	mu.Lock()
	connA = a
	mu.Unlock()
	fdA := sock.FD(a)
	payloadA := bytes.Repeat([]byte{'A'}, 64<<10)
	for i := 0; i < 64; i++ { // 4 MiB: far more than the socket buffers take
		if _, err := a.Write(payloadA); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() { // keeps writing to A across its close and B's life
		var sawClosed bool
		for {
			select {
			case <-stop:
				if !sawClosed {
					writerDone <- errors.New("writes to A never failed after A closed")
					return
				}
				writerDone <- nil
				return
			default:
			}
			_, err := a.Write(payloadA[:1024])
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					writerDone <- err
					return
				}
				sawClosed = true
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	// B's client socket exists before A's descriptor is freed, so the
	// kernel's lowest-number rule gives A's number to B's accepted side.
	clientB, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(clientB)
	a.Abort()
	wait(t, closedA, "A's OnClose")
	if err := unix.Connect(clientB, &unix.SockaddrInet4{Port: int(ln.Addr().Port()), Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	b := wait(t, opened, "B's OnOpen")
	if fdB := sock.FD(b); fdB != fdA {
		t.Fatalf("B got descriptor %d, not A's %d: the canary needs the reuse the kernel normally gives", fdB, fdA)
	}
	msg := bytes.Repeat([]byte{'B'}, 256<<10)
	got := make([]byte, len(msg))
	for i := 0; i < 8; i++ {
		go unix.Write(clientB, msg)
		for n := 0; n < len(got); {
			k, err := unix.Read(clientB, got[n:])
			if err != nil || k == 0 {
				t.Fatalf("B's echo after %d bytes: %v", n, err)
			}
			n += k
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("B's echo differs from what B sent: bytes meant for A reached B")
		}
	}
	close(stop)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
}
