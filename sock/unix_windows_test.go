package sock_test

import (
	"errors"
	"testing"

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
