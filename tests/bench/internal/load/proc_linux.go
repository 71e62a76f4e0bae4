package load

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// procCPUTicks is pid's user plus system time, all threads, in clock ticks
// (fields 14 and 15 of /proc/PID/stat, proc(5)).
func procCPUTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces
	// and parentheses of its own: the fields after it start after the
	// last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')' in %q", pid, b)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	utime, err := strconv.ParseInt(string(f[14-3]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat utime: %w", pid, err)
	}
	stime, err := strconv.ParseInt(string(f[15-3]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat stime: %w", pid, err)
	}
	return utime + stime, nil
}

// procRSSKiB is pid's resident set size (VmRSS in /proc/PID/status), in KiB.
func procRSSKiB(pid int) (int64, error) {
	if pid <= 0 {
		return 0, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		v, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		// "VmRSS:	    1234 kB"
		f := bytes.Fields(v)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("/proc/%d/status: VmRSS line %q", pid, line)
		}
		return strconv.ParseInt(string(f[0]), 10, 64)
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS line", pid)
}

// selfCPU is this process's user plus system time, all threads (what the
// client costs the machine), and the calling thread's voluntary context
// switches: its sleeps waiting for the server, without the Go runtime's
// other threads parking and waking. The client calls it from its loop,
// on the thread Run locked.
func selfCPU() (cpu time.Duration, sleeps int64, err error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, os.NewSyscallError("getrusage", err)
	}
	cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0, 0, os.NewSyscallError("getrusage RUSAGE_THREAD", err)
	}
	return cpu, ru.Nvcsw, nil
}
