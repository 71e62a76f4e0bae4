package sock_test

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// TestListenReusePort: with ReusePort two listeners share a port and both
// serve; without it the second bind fails with a clear error.
func TestListenReusePort(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	h := &echo.Handler{}
	if !reusePortExists {
		a, err := e.Listen("127.0.0.1:0", h, reactor.ListenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		if _, err := e.Listen(a.Addr().String(), h, reactor.ListenOptions{}); !isAddrInUse(err) {
			t.Fatalf("second Listen on a bound port: %v, want address in use", err)
		}
		if _, err := e.Listen("127.0.0.1:0", h, reactor.ListenOptions{ReusePort: true}); !errors.Is(err, sock.ErrNotSupported) {
			t.Fatalf("ReusePort where the system has no SO_REUSEPORT: %v, want ErrNotSupported", err)
		}
		return
	}
	a, err := e.Listen("127.0.0.1:0", h, reactor.ListenOptions{ReusePort: true})
	if err != nil {
		t.Fatal(err)
	}
	addr := a.Addr().String()
	if _, err := e.Listen(addr, h, reactor.ListenOptions{}); !isAddrInUse(err) {
		t.Fatalf("second Listen without ReusePort: %v, want EADDRINUSE", err)
	}
	b, err := e.Listen(addr, h, reactor.ListenOptions{ReusePort: true})
	if err != nil {
		t.Fatalf("second Listen with ReusePort: %v", err)
	}
	a.Close()
	<-a.Done()
	c := dial(t, addr) // only b is left to accept it
	defer c.Close()
	if err := echoOn(c, []byte("reuse")); err != nil {
		t.Fatal(err)
	}
	b.Close()
}

func TestListenBadAddress(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	for _, addr := range []string{"nohost", "127.0.0.1:99999", "example.com:80"} {
		if _, err := e.Listen(addr, &echo.Handler{}, reactor.ListenOptions{}); err == nil {
			t.Errorf("Listen(%q) succeeded", addr)
		}
	}
}

// TestAcceptReportsPeerAddress: the accepted side's RemoteAddr is the
// client's address and port, on IPv4 and IPv6 loopback.
func TestAcceptReportsPeerAddress(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		e := testutil.Engine(t, reactor.Config{IOThreads: 1})
		remote := make(chan netip.AddrPort, 1)
		ln, err := e.Listen(net.JoinHostPort(host, "0"), &funcHandler{
			onOpen: func(c *reactor.Conn) { remote <- c.RemoteAddr() },
		}, reactor.ListenOptions{})
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		c := dial(t, ln.Addr().String())
		want := c.LocalAddr().(*net.TCPAddr).AddrPort()
		if got := wait(t, remote, "OnOpen"); got != netip.AddrPortFrom(want.Addr().Unmap(), want.Port()) {
			t.Errorf("%s: RemoteAddr %v, client is %v", host, got, want)
		}
		c.Close()
	}
}
