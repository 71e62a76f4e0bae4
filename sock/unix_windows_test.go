package sock_test

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// TestUnixNotOfferedOnWindows: Listen and Dial refuse a unix address on
// Windows with ErrNotSupported (docs/unix.md says why), opening nothing.
func TestUnixNotOfferedOnWindows(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	addr := `unix:C:\reactor-test.sock`
	if _, err := e.Listen(addr, &echo.Handler{}, reactor.ListenOptions{}); !errors.Is(err, sock.ErrNotSupported) {
		t.Fatalf("Listen %s: %v, want ErrNotSupported", addr, err)
	}
	if _, err := e.Dial(addr, &funcHandler{}, reactor.DialOptions{}); !errors.Is(err, sock.ErrNotSupported) {
		t.Fatalf("Dial %s: %v, want ErrNotSupported", addr, err)
	}
	if s := e.Stats(); s.FDs != 0 {
		t.Fatalf("%d descriptors open after refusals", s.FDs)
	}
}

// TestControlOnWindows: Control hands out an open connection's SOCKET
// and refuses once it is closed.
func TestControlOnWindows(t *testing.T) {
	e, addr := listenEcho(t, reactor.Config{IOThreads: 1})
	opened := make(chan *reactor.Conn, 1)
	closed := make(chan struct{})
	if _, err := e.Dial(addr, &funcHandler{
		onOpen:  func(c *reactor.Conn) { opened <- c },
		onClose: func(*reactor.Conn, error) { close(closed) },
	}, reactor.DialOptions{}); err != nil {
		t.Fatal(err)
	}
	c := testutil.Await(t, opened, 5*time.Second, "the dialled connection")
	typ := -1
	if err := c.Control(func(fd uintptr) { typ, _ = windows.GetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, soType) }); err != nil || typ != windows.SOCK_STREAM {
		t.Fatalf("Control: %v, SO_TYPE %d, want SOCK_STREAM", err, typ)
	}
	c.Close()
	<-closed
	if err := c.Control(func(uintptr) { t.Error("f called on a closed connection") }); !errors.Is(err, sock.ErrClosed) {
		t.Fatalf("Control after close: %v, want ErrClosed", err)
	}
}

// soType is winsock2.h's SO_TYPE, which x/sys/windows does not name.
const soType = 0x1008
