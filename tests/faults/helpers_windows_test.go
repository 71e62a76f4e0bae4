package faults_test

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/windows"
)

// setSockSizes sets o on a socket not yet connected.
func setSockSizes(fd uintptr, o sockSizes) error {
	for _, opt := range []struct{ level, name, v int }{
		{windows.SOL_SOCKET, windows.SO_SNDBUF, o.send},
		{windows.SOL_SOCKET, windows.SO_RCVBUF, o.receive},
		{windows.IPPROTO_TCP, windows.TCP_MAXSEG, o.segment},
	} {
		if opt.v == 0 {
			continue
		}
		if err := windows.SetsockoptInt(windows.Handle(fd), opt.level, opt.name, opt.v); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}

// processCPU is the kernel and user time of every thread of the process
// (GetProcessTimes), which Windows counts in 100 ns units.
func processCPU() (time.Duration, error) {
	var created, exited, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(windows.CurrentProcess(), &created, &exited, &kernel, &user); err != nil {
		return 0, os.NewSyscallError("GetProcessTimes", err)
	}
	ticks := func(f windows.Filetime) time.Duration {
		return time.Duration(uint64(f.HighDateTime)<<32|uint64(f.LowDateTime)) * 100
	}
	return ticks(kernel) + ticks(user), nil
}

// errNoSuchOption is what setsockopt answers for an option the system
// does not have.
const errNoSuchOption = windows.WSAENOPROTOOPT

// underWine reports whether the process runs under Wine, whose ntdll
// exports wine_get_version (Windows' does not): Wine runs sockets on the
// host's TCP stack and does not emulate everything (docs/windows.md).
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// isReset reports whether err says the peer reset the connection.
func isReset(err error) bool { return errors.Is(err, windows.WSAECONNRESET) }
