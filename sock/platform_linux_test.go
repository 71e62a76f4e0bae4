package sock_test

import (
	"errors"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// reusePortExists: Linux has SO_REUSEPORT.
const reusePortExists = true

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// keepAliveOf reads a socket's keep-alive (tcp(7)).
func keepAliveOf(fd uintptr) (keepAliveState, error) {
	on, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
	if err != nil || on == 0 {
		return keepAliveState{}, err
	}
	s := keepAliveState{on: true}
	for _, o := range []struct {
		opt int
		v   *int
	}{{unix.TCP_KEEPIDLE, &s.idle}, {unix.TCP_KEEPINTVL, &s.intvl}, {unix.TCP_KEEPCNT, &s.count}} {
		if *o.v, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, o.opt); err != nil {
			return s, err
		}
	}
	return s, nil
}

// userTimeoutOf reads TCP_USER_TIMEOUT.
func userTimeoutOf(fd uintptr) (time.Duration, error) {
	ms, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	return time.Duration(ms) * time.Millisecond, err
}

// userTimeoutSet is what the kernel keeps of a UserTimeout: milliseconds.
func userTimeoutSet(d time.Duration) time.Duration { return d.Truncate(time.Millisecond) }

// isTransientRecvErr: the error SetRecvErrHook injects on Linux.
func isTransientRecvErr(err error) bool { return errors.Is(err, unix.ENOMEM) }

// ownLoopback moves the test's goroutine, for good, to a thread in a
// network namespace of its own with loopback up: sockets it makes live
// there, and so do those accepted from them and commands it starts. The
// thread is never unlocked, so it ends with the test's goroutine and no
// other goroutine ever runs in the namespace. It skips the test where a
// namespace cannot be made.
func ownLoopback(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Skipf("cannot make a network namespace (needs root or CAP_SYS_ADMIN): %v", err)
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Skipf("ip link set lo up: %v: %s (iproute2 is needed to bring loopback up)", err, out)
	}
}
