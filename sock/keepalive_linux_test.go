package sock_test

import (
	"context"
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
)

// The behaviour the options are for, on Linux, where a network namespace
// of the test's own can make a peer vanish: every packet dropped, with no
// FIN, no RST and no ICMP error, as when a peer's machine loses power.
// Windows binaries under Wine cannot enter a namespace; there the options
// are checked on the socket (keepalive_test.go).

// TestKeepAliveDropsAVanishedPeer: after the peer vanishes, a connection
// with probes (1 s idle, 2 probes 1 s apart) fails with ETIMEDOUT and
// OnClose says so; one without probes, idle the same way, is still open
// then, as it would be for ever.
func TestKeepAliveDropsAVanishedPeer(t *testing.T) {
	vanish := vanishingLoopback(t)
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	probed := serveVanishing(t, e, reactor.ConnOptions{KeepAlive: reactor.KeepAlive{Idle: time.Second, Interval: time.Second, Count: 2}})
	silent := serveVanishing(t, e, reactor.ConnOptions{KeepAlive: reactor.KeepAlive{Off: true}})
	vanish()
	start := time.Now()
	closesAlone(t, probed.closed, silent.closed, syscall.ETIMEDOUT, "with probes")
	t.Logf("dropped %v after the peer vanished", time.Since(start).Round(10*time.Millisecond))
	silent.c.Abort()
}

// TestUserTimeoutDropsAPeerThatStopsAcknowledging: after the peer
// vanishes, a connection that sends fails with ETIMEDOUT once its bytes
// stayed unacknowledged for UserTimeout (1.5 s); probes are off for both,
// and they would not run anyway while bytes wait for an
// acknowledgement. One without a user timeout, sending the same, is
// still open then: the kernel retransmits for about 15 minutes.
func TestUserTimeoutDropsAPeerThatStopsAcknowledging(t *testing.T) {
	vanish := vanishingLoopback(t)
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	off := reactor.KeepAlive{Off: true}
	bounded := serveVanishing(t, e, reactor.ConnOptions{KeepAlive: off, UserTimeout: 1500 * time.Millisecond})
	unbounded := serveVanishing(t, e, reactor.ConnOptions{KeepAlive: off})
	vanish()
	start := time.Now()
	for _, s := range []*vanishingConn{bounded, unbounded} {
		if _, err := s.c.Write(make([]byte, 10<<10)); err != nil {
			t.Fatal(err)
		}
	}
	closesAlone(t, bounded.closed, unbounded.closed, syscall.ETIMEDOUT, "with a user timeout")
	t.Logf("dropped %v after the peer vanished", time.Since(start).Round(10*time.Millisecond))
	unbounded.c.Abort()
}

// vanishingConn is the server end of a connection whose peer will vanish:
// it keeps a read outstanding, and closed gets its close reason.
type vanishingConn struct {
	c      *reactor.Conn
	closed chan error
}

// serveVanishing listens with o, connects a client of Go's net to it
// (probes off, so only the server end probes), and returns the server
// end. The client is closed with a reset when the test ends, which frees
// it at once even with its packets dropped.
func serveVanishing(t *testing.T, e *reactor.Engine, o reactor.ConnOptions) *vanishingConn {
	t.Helper()
	v := &vanishingConn{closed: make(chan error, 1)}
	opened := make(chan *reactor.Conn, 1)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) { c.Read(); opened <- c },
		onRead: func(c *reactor.Conn, b *reactor.Buffer, err error) {
			if b != nil {
				b.Release()
			}
			if err == nil {
				c.Read()
			}
		},
		onClose: func(_ *reactor.Conn, err error) { v.closed <- err },
	}, reactor.ListenOptions{ConnOptions: o})
	if err != nil {
		t.Fatal(err)
	}
	c, err := (&net.Dialer{KeepAlive: -1}).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	v.c = testutil.Await(t, opened, 5*time.Second, "the accept")
	return v
}

// vanishingLoopback puts the test in a network namespace of its own
// (ownLoopback). vanish then drops every packet in the namespace without
// a trace: a blackhole rule ahead of the local routing table, which
// established sockets meet on their next send (a rule change invalidates
// their cached routes).
func vanishingLoopback(t *testing.T) (vanish func()) {
	t.Helper()
	ownLoopback(t)
	return func() {
		for _, args := range [][]string{
			{"rule", "add", "pref", "100", "lookup", "local"},
			{"rule", "add", "pref", "10", "blackhole"},
			{"rule", "del", "pref", "0", "lookup", "local"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %v: %v: %s", args, err, out)
			}
		}
	}
}

// TestKeepAliveReachesSocketsOfAnInheritedListener: a listening socket
// made elsewhere and served through ListenFile gets the keep-alive and
// user timeout, so the sockets it accepts have them. Go's net listens
// with MPTCP where the kernel has it, and an MPTCP listener refuses
// TCP_USER_TIMEOUT (ENOPROTOOPT) although the sockets it accepts take it:
// the engine sets what the listener refused on each accepted socket.
// Both kinds of listener, and nothing counted as refused.
func TestKeepAliveReachesSocketsOfAnInheritedListener(t *testing.T) {
	for _, mptcp := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "mptcp"}[mptcp], func(t *testing.T) {
			inheritedListenerOptions(t, mptcp)
		})
	}
}

func inheritedListenerOptions(t *testing.T, mptcp bool) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	var lc net.ListenConfig
	lc.SetMultipathTCP(mptcp)
	tl, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := tl.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var proto int
	raw.Control(func(fd uintptr) { proto, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL) })
	if (proto == unix.IPPROTO_MPTCP) != mptcp {
		t.Skipf("the listener's protocol is %d: this kernel has no MPTCP", proto)
	}
	accepted := make(chan *reactor.Conn, 1)
	o := reactor.ConnOptions{KeepAlive: reactor.KeepAlive{Idle: 3 * time.Second, Interval: 2 * time.Second, Count: 4}, UserTimeout: 5 * time.Second}
	ln, err := e.ListenFile(fileOf(t, tl.(*net.TCPListener)), &funcHandler{onOpen: func(c *reactor.Conn) { accepted <- c }}, reactor.ListenOptions{ConnOptions: o})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ka keepAliveState
	var ut time.Duration
	var kerr, uerr error
	if err := testutil.Await(t, accepted, 5*time.Second, "the accept").Control(func(fd uintptr) {
		ka, kerr = keepAliveOf(fd)
		ut, uerr = userTimeoutOf(fd)
	}); err != nil {
		t.Fatal(err)
	}
	if kerr != nil || uerr != nil {
		t.Fatal(kerr, uerr)
	}
	if want := (keepAliveState{on: true, idle: 3, intvl: 2, count: 4}); ka != want || ut != o.UserTimeout {
		t.Errorf("accepted socket: keep-alive %+v and user timeout %v, want %+v and %v", ka, ut, want, o.UserTimeout)
	}
	if n := e.Stats().SockoptErrors; n != 0 {
		t.Errorf("%d socket options refused", n)
	}
}
