package faults_test

// Helpers of the fault tests: clients with socket options set before
// they connect, the process's CPU time over a stretch, and a bounded
// poll. The platform halves (socket options before connect, process CPU
// time, what a reset looks like, whether Wine runs the tests) are in
// helpers_linux_test.go and helpers_windows_test.go; helpers shared with
// other packages' tests (a fault tally, bounded waits, reproducible
// bytes, an echo round trip) are in internal/testutil.

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// sockSizes are socket options a test client sets before it connects, 0
// leaving one at the kernel's default: SO_SNDBUF, SO_RCVBUF, and
// TCP_MAXSEG (which the SYN advertises, so it bounds the segments of
// both directions).
type sockSizes struct{ send, receive, segment int }

// dialSized connects to addr with o set before the connect, so the window
// and segment size the SYN advertises already reflect them.
func dialSized(t *testing.T, addr string, o sockSizes) *net.TCPConn {
	t.Helper()
	c, err := tryDialSized(addr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tryDialSized is dialSized for a caller that handles the error: an
// option the system refuses fails the dial with errNoSuchOption.
func tryDialSized(addr string, o sockSizes) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = setSockSizes(fd, o) })
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// cpuSpan measures the CPU time the whole process (engine, clients,
// runtime) spends over a stretch of wall time. A busy loop in the engine
// costs a whole CPU, 100% of the wall time; a thread that sleeps until
// the kernel has something for it costs a few percent.
type cpuSpan struct {
	cpu  time.Duration
	wall time.Time
}

func startCPU(t *testing.T) cpuSpan {
	t.Helper()
	cpu, err := processCPU()
	if err != nil {
		t.Fatal(err)
	}
	return cpuSpan{cpu: cpu, wall: time.Now()}
}

// share returns the CPU time spent since the span started as a fraction
// of one CPU, with the two durations it came from.
func (s cpuSpan) share(t *testing.T) (share float64, cpu, wall time.Duration) {
	t.Helper()
	now, err := processCPU()
	if err != nil {
		t.Fatal(err)
	}
	cpu, wall = now-s.cpu, time.Since(s.wall)
	return float64(cpu) / float64(wall), cpu, wall
}

// maxCPUShare bounds the CPU the process may burn while a connection
// waits on a slow peer. A spinning I/O thread burns a whole CPU (a share
// of 1 or more); a waiting engine, its client included, about a fifth,
// and up to about a half under the race detector, which slows every
// step: 0.8 tells the two apart with room on a shared machine.
const maxCPUShare = 0.8

// checkNoSpin fails t if the span took more than maxCPUShare of a CPU.
func checkNoSpin(t *testing.T, s cpuSpan, what string) {
	t.Helper()
	share, cpu, wall := s.share(t)
	t.Logf("%s: CPU %v over %v of wall time (%.1f%% of one CPU)", what, cpu.Round(time.Millisecond), wall.Round(time.Millisecond), 100*share)
	if share > maxCPUShare {
		t.Errorf("%s: the process used %.0f%% of a CPU (%v in %v): something spins", what, 100*share, cpu, wall)
	}
}

// waitCond polls cond until it holds, failing t after d.
func waitCond(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(time.Millisecond)
	}
}
