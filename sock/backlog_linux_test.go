package sock_test

import (
	"net"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// fullListener makes a raw listener of backlog 0 that never accepts and
// fills its queue; later SYNs to it are dropped by the kernel.
func fullListener(t *testing.T) (string, func()) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	port := sa.(*unix.SockaddrInet4).Port
	var fillers []int
	for i := 0; i < 4; i++ { // backlog 0 admits one; a few more make sure
		c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Connect(c, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
		fillers = append(fillers, c)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return addr, func() {
		for _, c := range fillers {
			unix.Close(c)
		}
		unix.Close(fd)
	}
}
