package sock_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/windows"
)

// reusePortExists: Windows has no SO_REUSEPORT (its SO_REUSEADDR lets
// another socket steal a bound port, which the engine never sets).
const reusePortExists = false

func isAddrInUse(err error) bool { return errors.Is(err, windows.WSAEADDRINUSE) }

// fullListener makes a raw listener of backlog 0 that never accepts and
// fills its queue, so that a later connect stays pending: the kernel
// drops its SYN. Wine runs on the host's TCP stack, which does that; a
// Windows stack that answers a full queue with a reset instead cannot
// hold a loopback connect pending, and the test says so and skips.
func fullListener(t *testing.T) (string, func()) {
	t.Helper()
	fd, err := windows.Socket(windows.AF_INET, windows.SOCK_STREAM, windows.IPPROTO_TCP)
	if err != nil {
		t.Fatal(err)
	}
	if err := windows.Bind(fd, &windows.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := windows.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := windows.Getsockname(fd)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*windows.SockaddrInet4).Port))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	refused := make(chan struct{}, 8)
	for range 4 { // backlog 0 admits one; a few more make sure
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 30 * time.Second}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				<-ctx.Done()
				c.Close()
			} else if ctx.Err() == nil {
				refused <- struct{}{}
			}
		}()
	}
	cleanup := func() {
		cancel()
		windows.Closesocket(fd)
		wg.Wait()
	}
	select {
	case <-refused:
		cleanup()
		t.Skip("this stack refuses connects to a full accept queue instead of dropping them: a loopback connect cannot be held pending")
	case <-time.After(300 * time.Millisecond):
	}
	return addr, cleanup
}

// keepAliveOf reads a socket's keep-alive: SO_KEEPALIVE, and the
// TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT of Windows 10 1709 on.
// Wine 8 implements only SO_KEEPALIVE (the others fail with
// WSAENOPROTOOPT, read or written; the engine then sets the timing with
// SIO_KEEPALIVE_VALS, which Wine does implement): the timing is then
// reported unknown.
func keepAliveOf(fd uintptr) (keepAliveState, error) {
	s := windows.Handle(fd)
	on, err := windows.GetsockoptInt(s, windows.SOL_SOCKET, windows.SO_KEEPALIVE)
	if err != nil || on == 0 {
		return keepAliveState{}, err
	}
	ka := keepAliveState{on: true}
	for _, o := range []struct {
		opt int
		v   *int
	}{{windows.TCP_KEEPIDLE, &ka.idle}, {windows.TCP_KEEPINTVL, &ka.intvl}, {windows.TCP_KEEPCNT, &ka.count}} {
		if *o.v, err = windows.GetsockoptInt(s, windows.IPPROTO_TCP, o.opt); errors.Is(err, windows.WSAENOPROTOOPT) {
			return keepAliveState{on: true, unknown: true}, nil
		} else if err != nil {
			return ka, err
		}
	}
	return ka, nil
}

// userTimeoutOf reads TCP_MAXRT, in seconds; errUnreadable where the
// platform cannot (Wine 8: WSAENOPROTOOPT, and it cannot set it either).
func userTimeoutOf(fd uintptr) (time.Duration, error) {
	secs, err := windows.GetsockoptInt(windows.Handle(fd), windows.IPPROTO_TCP, windows.TCP_MAXRT)
	if errors.Is(err, windows.WSAENOPROTOOPT) {
		return 0, errUnreadable
	}
	return time.Duration(secs) * time.Second, err
}

// userTimeoutSet is what Windows keeps of a UserTimeout: whole seconds,
// rounded up.
func userTimeoutSet(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}

// isTransientRecvErr: the error SetRecvErrHook injects on Windows.
func isTransientRecvErr(err error) bool { return errors.Is(err, windows.WSAENOBUFS) }
