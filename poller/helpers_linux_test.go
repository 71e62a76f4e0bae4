package poller_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ioreactor/reactor/poller"
	"golang.org/x/sys/unix"
)

// fds owns the descriptors one test opens and closes those still open at
// cleanup, so that a test may close an end early without a double close.
type fds struct {
	t    testing.TB
	open map[int]bool
}

func newFDs(t testing.TB) *fds {
	f := &fds{t: t, open: map[int]bool{}}
	t.Cleanup(func() {
		for fd := range f.open {
			if err := unix.Close(fd); err != nil {
				t.Errorf("close %d: %v", fd, err)
			}
		}
	})
	return f
}

// pipe returns a non-blocking, close-on-exec pipe.
func (f *fds) pipe() (r, w int) {
	f.t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		f.t.Fatal(err)
	}
	f.open[p[0]], f.open[p[1]] = true, true
	return p[0], p[1]
}

// socketpair returns a connected, non-blocking, close-on-exec pair of Unix
// stream sockets.
func (f *fds) socketpair() (a, b int) {
	f.t.Helper()
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	f.open[p[0]], f.open[p[1]] = true, true
	return p[0], p[1]
}

func (f *fds) close(fd int) {
	f.t.Helper()
	if !f.open[fd] {
		f.t.Fatalf("close of %d, which the test does not own", fd)
	}
	delete(f.open, fd)
	if err := unix.Close(fd); err != nil {
		f.t.Fatal(err)
	}
}

func write(t testing.TB, fd int, s string) {
	t.Helper()
	if _, err := unix.Write(fd, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

func add(t testing.TB, p *poller.Poller, fd int, token uint64, in poller.Interest) {
	t.Helper()
	if err := p.Add(fd, token, in); err != nil {
		t.Fatal(err)
	}
}

// waitOne waits for exactly one event and checks its token and that it has
// at least the flags in want.
func waitOne(t testing.TB, p *poller.Poller, token uint64, want poller.Flags) poller.Event {
	t.Helper()
	events := wait(t, p, int(guard/time.Millisecond))
	if len(events) != 1 {
		t.Fatalf("got %d events %v, want 1", len(events), events)
	}
	if ev := events[0]; ev.Token != token || ev.Flags&want != want {
		t.Fatalf("got event %#x %04b, want token %#x with flags %04b", ev.Token, ev.Flags, token, want)
	}
	return events[0]
}

func waitNone(t testing.TB, p *poller.Poller) {
	t.Helper()
	if events := wait(t, p, 0); len(events) != 0 {
		t.Fatalf("got events %v, want none", events)
	}
}

// eventfdCount reads an eventfd's counter without consuming it, from
// /proc/self/fdinfo (Linux 3.8 and later).
func eventfdCount(t testing.TB, fd int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "eventfd-count:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no eventfd-count in fdinfo of %d:\n%s", fd, b)
	return 0
}

func fdCount(t testing.TB) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
