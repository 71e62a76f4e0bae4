package sock_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// TestUnixAddressRefusals: a "unix:" address the kernel could not take
// is refused by Listen and Dial before anything is opened, on every
// platform, and the datagram calls refuse any unix address by name.
func TestUnixAddressRefusals(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	for _, addr := range []string{
		"unix:",
		"unix:@",
		"unix:/tmp/a\x00b",
		"unix:/" + strings.Repeat("p", 107), // 108 bytes: no room for the NUL
		"unix:@" + strings.Repeat("n", 108), // 109 bytes with the '@'
	} {
		if _, err := e.Listen(addr, &echo.Handler{}, reactor.ListenOptions{}); !errors.Is(err, sock.ErrUnixPath) {
			t.Errorf("Listen %.20q…: %v, want ErrUnixPath", addr, err)
		}
		if _, err := e.Dial(addr, &funcHandler{}, reactor.DialOptions{}); !errors.Is(err, sock.ErrUnixPath) {
			t.Errorf("Dial %.20q…: %v, want ErrUnixPath", addr, err)
		}
	}
	for _, f := range []func() error{
		func() error { _, err := e.ListenPacket("unix:/tmp/d.sock", nil, reactor.PacketOptions{}); return err },
		func() error { _, err := e.DialPacket("unix:/tmp/d.sock", nil, reactor.PacketOptions{}); return err },
	} {
		if err := f(); err == nil || !strings.Contains(err.Error(), "unix socket address") {
			t.Errorf("a datagram socket on a unix address: %v, want a refusal naming it", err)
		}
	}
	if s := e.Stats(); s.FDs != 0 {
		t.Fatalf("%d descriptors open after refusals that should open none", s.FDs)
	}
}
