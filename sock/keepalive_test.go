package sock_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// TestKeepAliveReachesTheSocket: the keep-alive a listener or a connect
// asks for is on the connection's socket, at both ends: the defaults (on,
// 15 s, 15 s, 9, as Go's net), values of the caller's (durations rounded
// up to whole seconds), and off. On Linux the accepted socket has it from
// its listener (set once there, inherited); on Windows it is set on each.
func TestKeepAliveReachesTheSocket(t *testing.T) {
	for _, tc := range []struct {
		name string
		ka   reactor.KeepAlive
		want keepAliveState
	}{
		{"default", reactor.KeepAlive{}, keepAliveState{on: true, idle: 15, intvl: 15, count: 9}},
		{"set", reactor.KeepAlive{Idle: 2 * time.Second, Interval: 1500 * time.Millisecond, Count: 3}, keepAliveState{on: true, idle: 2, intvl: 2, count: 3}},
		{"off", reactor.KeepAlive{Off: true}, keepAliveState{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testutil.Engine(t, reactor.Config{IOThreads: 1})
			accepted, dialed := bothEnds(t, e, reactor.ConnOptions{KeepAlive: tc.ka})
			for _, end := range []struct {
				name string
				c    *reactor.Conn
			}{{"accepted", accepted}, {"dialed", dialed}} {
				var got keepAliveState
				var gerr error
				if err := end.c.Control(func(fd uintptr) { got, gerr = keepAliveOf(fd) }); err != nil {
					t.Fatal(err)
				}
				if gerr != nil {
					t.Fatalf("%s: %v", end.name, gerr)
				}
				if got.unknown {
					// Wine 8: the timing went through SIO_KEEPALIVE_VALS,
					// accepted (SockoptErrors below), and cannot be read.
					t.Logf("%s socket: keep-alive on, its timing unreadable on this platform", end.name)
					got = keepAliveState{on: true, idle: tc.want.idle, intvl: tc.want.intvl, count: tc.want.count}
				}
				if got != tc.want {
					t.Errorf("%s socket: keep-alive %+v, want %+v", end.name, got, tc.want)
				}
			}
			if n := e.Stats().SockoptErrors; n != 0 {
				t.Errorf("%d socket options refused", n)
			}
		})
	}
}

// TestUserTimeoutReachesTheSocket: UserTimeout is the socket's
// TCP_USER_TIMEOUT (Linux, milliseconds) or TCP_MAXRT (Windows, whole
// seconds), at both ends. Where the platform refuses the option (Wine 8
// implements no TCP_MAXRT), each refusal is counted and the connection
// works on without it.
func TestUserTimeoutReachesTheSocket(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	opts := reactor.ConnOptions{UserTimeout: 2500 * time.Millisecond}
	accepted, dialed := bothEnds(t, e, opts)
	for _, c := range []*reactor.Conn{accepted, dialed} {
		var got time.Duration
		var gerr error
		if err := c.Control(func(fd uintptr) { got, gerr = userTimeoutOf(fd) }); err != nil {
			t.Fatal(err)
		}
		if errors.Is(gerr, errUnreadable) {
			// Both ends refused it: counted, and the connection is up.
			if n := e.Stats().SockoptErrors; n != 2 {
				t.Errorf("the platform refuses the option, and %d refusals were counted, want 2 (one per end)", n)
			}
			t.Logf("this platform has no user timeout (Wine 8: TCP_MAXRT is WSAENOPROTOOPT); refusals counted: %d", e.Stats().SockoptErrors)
			return
		}
		if gerr != nil {
			t.Fatal(gerr)
		}
		if got != userTimeoutSet(opts.UserTimeout) {
			t.Errorf("user timeout %v, want %v", got, userTimeoutSet(opts.UserTimeout))
		}
	}
	if n := e.Stats().SockoptErrors; n != 0 {
		t.Errorf("%d socket options refused", n)
	}
}

// TestTCPOptionsOutOfRangeAreRefused: a keep-alive or user timeout the
// kernel cannot take is refused by Listen and Dial, by name, before any
// socket is opened.
func TestTCPOptionsOutOfRangeAreRefused(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	for _, o := range []reactor.ConnOptions{
		{KeepAlive: reactor.KeepAlive{Idle: -time.Second}},
		{KeepAlive: reactor.KeepAlive{Interval: 10 * time.Hour}},
		{KeepAlive: reactor.KeepAlive{Count: 128}},
		{KeepAlive: reactor.KeepAlive{Count: -1}},
		{UserTimeout: -time.Millisecond},
	} {
		if _, err := e.Listen("127.0.0.1:0", &funcHandler{}, reactor.ListenOptions{ConnOptions: o}); !errors.Is(err, sock.ErrBadOption) {
			t.Errorf("Listen with %+v: %v, want ErrBadOption", o, err)
		}
		if _, err := e.Dial("127.0.0.1:1", &funcHandler{}, reactor.DialOptions{ConnOptions: o}); !errors.Is(err, sock.ErrBadOption) {
			t.Errorf("Dial with %+v: %v, want ErrBadOption", o, err)
		}
	}
	if n := e.Stats().FDs; n != 0 {
		t.Errorf("%d descriptors open after the refusals, want 0", n)
	}
}

// closesAlone waits up to 20 s for the close of the connection that has
// the option (what names it), wants its reason to match want, and wants
// the one without the option, treated the same way, still open then.
func closesAlone(t *testing.T, with, without <-chan error, want error, what string) {
	t.Helper()
	if err := testutil.Await(t, with, 20*time.Second, "the close of the connection "+what); !errors.Is(err, want) {
		t.Errorf("the connection %s closed with %v, want %v", what, err, want)
	}
	select {
	case err := <-without:
		t.Errorf("the connection without the option closed too: %v", err)
	default:
	}
}

// bothEnds listens with o, dials the listener with o through the same
// engine, and returns the two ends once both are open.
func bothEnds(t *testing.T, e *reactor.Engine, o reactor.ConnOptions) (accepted, dialed *reactor.Conn) {
	t.Helper()
	acc := make(chan *reactor.Conn, 1)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{onOpen: func(c *reactor.Conn) { acc <- c }}, reactor.ListenOptions{ConnOptions: o})
	if err != nil {
		t.Fatal(err)
	}
	dia := make(chan *reactor.Conn, 1)
	if _, err := e.Dial(ln.Addr().String(), &funcHandler{onOpen: func(c *reactor.Conn) { dia <- c }}, reactor.DialOptions{Timeout: 5 * time.Second, ConnOptions: o}); err != nil {
		t.Fatal(err)
	}
	return testutil.Await(t, acc, 5*time.Second, "the accept"), testutil.Await(t, dia, 5*time.Second, "the connect")
}

// keepAliveState is a socket's keep-alive as the kernel reports it: off,
// or on with its idle time and interval in seconds and its count, unless
// the platform cannot report those (unknown).
type keepAliveState struct {
	on                 bool
	idle, intvl, count int
	unknown            bool
}

// errUnreadable says a platform cannot read an option back.
var errUnreadable = errors.New("the platform cannot read the option back")
