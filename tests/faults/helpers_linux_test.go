package faults_test

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// setSockSizes sets o on a socket not yet connected. Linux doubles a
// buffer size and rounds it up to its minimum (socket(7)).
func setSockSizes(fd uintptr, o sockSizes) error {
	for _, opt := range []struct{ level, name, v int }{
		{unix.SOL_SOCKET, unix.SO_SNDBUF, o.send},
		{unix.SOL_SOCKET, unix.SO_RCVBUF, o.receive},
		{unix.IPPROTO_TCP, unix.TCP_MAXSEG, o.segment},
	} {
		if opt.v == 0 {
			continue
		}
		if err := unix.SetsockoptInt(int(fd), opt.level, opt.name, opt.v); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}

// processCPU is the user and system time of every thread of the process
// (getrusage(2), RUSAGE_SELF).
func processCPU() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, os.NewSyscallError("getrusage", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// errNoSuchOption is what setsockopt answers for an option the system
// does not have.
const errNoSuchOption = unix.ENOPROTOOPT

// underWine is false: Linux is Linux.
func underWine() bool { return false }

// isReset reports whether err says the peer reset the connection.
func isReset(err error) bool { return errors.Is(err, unix.ECONNRESET) }
