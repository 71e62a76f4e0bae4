// Package testutil holds the helpers shared by the engine's black-box
// tests: leak baselines (descriptors, goroutines, buffers) and engines
// that check themselves when a test ends.
package testutil

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/lock"
	"github.com/ioreactor/reactor/internal/procfd"
	"github.com/ioreactor/reactor/pool"
)

// settle is how long a leak check waits for asynchronous teardown
// (goroutines exiting, descriptors closed by the loops) before it fails.
const settle = 3 * time.Second

// Main runs a test package and then fails it if descriptors or goroutines
// are left over compared with before the tests, or if the lock-order
// checker (internal/lock, built with -tags lockcheck) reported anything:
// every package's TestMain calls it.
func Main(m *testing.M) {
	warmNetpoll()
	warmSignals()
	before := Snapshot()
	code := m.Run()
	if err := saveLockOrder(); err != nil {
		fmt.Fprintln(os.Stderr, "lock order:", err)
		code = 1
	}
	if rs := lock.Reports(); len(rs) > 0 {
		fmt.Fprintf(os.Stderr, "lockcheck: %d report(s):\n", len(rs))
		for _, r := range rs {
			fmt.Fprint(os.Stderr, r.String())
		}
		code = 1
	}
	if code == 0 {
		if err := WaitBaseline(before); err != nil {
			fmt.Fprintln(os.Stderr, "leak check:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// LockOrderEnv names the environment variable that, set to a file's
// path under -tags lockcheck, makes each test package append the lock
// orders it saw to that file, one line each: "From -> To", a tab, and
// the innermost functions of the stack where To was first taken under
// From (duplicates across packages included). docs/architecture.md's lock
// order is made from it.
const LockOrderEnv = "REACTOR_LOCK_ORDER"

func saveLockOrder() error {
	path := os.Getenv(LockOrderEnv)
	if path == "" || !lock.Enabled {
		return nil
	}
	var b strings.Builder
	for _, e := range lock.Order() {
		var calls []string // the stack's functions, innermost first
		for line := range strings.Lines(e.Stack) {
			if !strings.HasPrefix(line, "\t\t") && len(calls) < 4 {
				calls = append(calls, strings.TrimSpace(line))
			}
		}
		fmt.Fprintf(&b, "%s -> %s\t%s\n", e.From, e.To, strings.Join(calls, " < "))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// warmSignals starts os/signal's watcher goroutine before the baseline:
// under go test -fuzz, package testing starts it after TestMain's snapshot
// and it never ends, which the check would call a leak after fuzzing
// passed.
func warmSignals() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt)
	signal.Stop(c)
}

// warmNetpoll makes Go's own network poller open its descriptors (an
// epoll and an eventfd, on first use of package net by the tests' clients)
// before the baseline is taken, so they do not count as a leak.
func warmNetpoll() {
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
	}
}

// Resources counts what a leak would leave behind.
type Resources struct {
	FDs        int // open descriptors of the process; -1 where the OS gives no count
	Goroutines int
}

// Snapshot counts the process's descriptors and goroutines now.
func Snapshot() Resources {
	return Resources{FDs: FDs(), Goroutines: runtime.NumGoroutine()}
}

// WaitBaseline waits (bounded) until descriptors and goroutines are back
// to base, and describes what is left if they are not.
func WaitBaseline(base Resources) error {
	deadline := time.Now().Add(settle)
	for {
		now := Snapshot()
		if now.FDs <= base.FDs && now.Goroutines <= base.Goroutines {
			return nil
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			return fmt.Errorf("descriptors %d (baseline %d): %s; goroutines %d (baseline %d):\n%s",
				now.FDs, base.FDs, strings.Join(procfd.List(), ", "), now.Goroutines, base.Goroutines, buf[:n])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// FDs counts the process's open descriptors; -1 where the OS gives no
// count, which makes every comparison with a baseline pass.
func FDs() int {
	n, err := procfd.Count()
	if err != nil {
		return -1
	}
	return n
}

// Engine starts an engine for one test and, when the test ends, shuts it
// down and fails the test if it did not come back to zero: no connection
// open, no descriptor held, no buffer in use, no panic recovered unless
// the test says it expects some (AllowPanics).
func Engine(t testing.TB, cfg reactor.Config) *reactor.Engine {
	t.Helper()
	cfg = WithTestBackend(cfg)
	e, err := reactor.New(cfg)
	if err != nil {
		t.Fatalf("reactor.New: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Shutdown(5 * time.Second); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		CheckZero(t, e)
	})
	return e
}

// CheckZero fails t unless the engine holds nothing: run it after
// Shutdown. These are the bounds every test's engine declares: no
// connection, descriptor, buffer, registration, ring file slot or armed
// timer left, no blocking work running, queued or parked. A buffer left
// in use is reported with the place that took it in a -tags bufleak
// build.
func CheckZero(t testing.TB, e *reactor.Engine) {
	t.Helper()
	s := e.Stats()
	if s.ConnsOpen != 0 || s.FDs != 0 || s.Buffers.InUse != 0 || s.Registrations != 0 || s.TimersArmed != 0 ||
		s.Ring.Files != 0 || s.Blocking.Running+s.Blocking.Queued+s.Blocking.Parked+s.Handshakes.Running+s.Handshakes.Queued+s.Handshakes.Parked != 0 {
		t.Errorf("engine not empty after shutdown: conns open %d, fds %d, buffers in use %d, registrations %d, timers armed %d, ring file slots %d, blocking work %d running %d queued %d parked, handshakes %d running %d queued %d parked",
			s.ConnsOpen, s.FDs, s.Buffers.InUse, s.Registrations, s.TimersArmed, s.Ring.Files,
			s.Blocking.Running, s.Blocking.Queued, s.Blocking.Parked, s.Handshakes.Running, s.Handshakes.Queued, s.Handshakes.Parked)
	}
	if s.Buffers.InUse != 0 {
		reportLeaks(t, e.Buffers())
	}
}

// reportLeaks names where the buffers still in use were taken.
func reportLeaks(t testing.TB, p *pool.Buffers) {
	t.Helper()
	if !pool.LeakChecking() {
		t.Errorf("run with -tags bufleak to see where the buffers in use were taken")
		return
	}
	leaks := p.Outstanding()
	for i, l := range leaks {
		if i == 5 {
			t.Errorf("… and %d more", len(leaks)-5)
			break
		}
		t.Errorf("buffer in use, taken at:\n%s", l.Stack)
	}
}

// BackendEnv names the environment variable that picks the backend of
// every engine the tests make: "epoll" or "uring" (CI runs the suite both
// ways); empty keeps what the test asked for (BackendAuto by default).
const BackendEnv = "REACTOR_TEST_BACKEND"

// WithTestBackend applies BackendEnv to cfg. A test that names a backend
// keeps it, and an engine that shares one poller between threads stays on
// epoll, the only backend that can.
func WithTestBackend(cfg reactor.Config) reactor.Config {
	if cfg.Backend != reactor.BackendAuto {
		return cfg
	}
	switch os.Getenv(BackendEnv) {
	case "":
	case "epoll":
		cfg.Backend = reactor.BackendEpoll
	case "uring":
		if !cfg.SharedPoller {
			cfg.Backend = reactor.BackendURing
		}
	default:
		panic("testutil: " + BackendEnv + " must be epoll or uring")
	}
	return cfg
}

// TempDir is t.TempDir, except under Wine: there Go's RemoveAll fails
// ("Invalid function": Wine 8 lacks the file-disposition call it uses),
// which would fail a test that passed, so the directory is made with
// os.MkdirTemp and emptied file by file with os.Remove, best effort.
func TempDir(t testing.TB) string {
	t.Helper()
	if runtime.GOOS != "windows" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", "reactor-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			os.Remove(filepath.Join(dir, e.Name()))
		}
		os.Remove(dir)
	})
	return dir
}
