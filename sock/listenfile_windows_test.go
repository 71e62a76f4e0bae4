package sock_test

import (
	"errors"
	"os"
	"testing"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// TestListenFileNotOfferedOnWindows: ListenFile and Listener.File refuse
// with ErrNotSupported on Windows (docs/handoff.md says why).
func TestListenFileNotOfferedOnWindows(t *testing.T) {
	e, _ := listenEcho(t, reactor.Config{IOThreads: 1})
	if _, err := e.ListenFile(os.Stdin, &echo.Handler{}, reactor.ListenOptions{}); !errors.Is(err, sock.ErrNotSupported) {
		t.Fatalf("ListenFile: %v, want ErrNotSupported", err)
	}
	ln, err := testutil.Engine(t, reactor.Config{IOThreads: 1}).Listen("127.0.0.1:0", &echo.Handler{}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ln.File(); !errors.Is(err, sock.ErrNotSupported) {
		t.Fatalf("Listener.File: %v, want ErrNotSupported", err)
	}
}
