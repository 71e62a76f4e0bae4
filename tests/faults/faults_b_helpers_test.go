package faults_test

// Helpers shared by the race, proxy, shutdown and churn tests: a tally of
// faults seen on other goroutines, bounded waits, and reproducible bytes.

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
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

// streamBytes is n bytes that depend on seed, so an echo that drops,
// repeats or reorders a segment cannot match.
func streamBytes(n int, seed uint64) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}
