package faults_test

// Helpers shared by the race, proxy, shutdown and churn tests: a tally of
// faults seen on other goroutines, bounded waits, and reproducible bytes.

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultTally records broken promises seen on I/O threads and client
// goroutines, where t.Fatal cannot be called; the test reports them once.
type faultTally struct {
	mu    sync.Mutex
	n     int
	first []string
}

func (f *faultTally) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if len(f.first) < 5 {
		f.first = append(f.first, fmt.Sprintf(format, args...))
	}
}

func (f *faultTally) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// report fails t if any fault was recorded, quoting the first few.
func (f *faultTally) report(t testing.TB) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n > 0 {
		t.Errorf("%d faults; the first: %s", f.n, strings.Join(f.first, "; "))
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
