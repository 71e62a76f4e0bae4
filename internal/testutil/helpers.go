package testutil

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// RandomBytes returns n random bytes from seed: the same n and seed give
// the same bytes.
func RandomBytes(n int, seed uint64) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// Faults records broken promises seen on I/O threads and other
// goroutines, where t.Fatal cannot be called, keeping the first few; the
// test reports them once. The zero value is ready to use.
type Faults struct {
	mu    sync.Mutex
	n     int
	first []string
}

// Add records a fault.
func (f *Faults) Add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if len(f.first) < 5 {
		f.first = append(f.first, fmt.Sprintf(format, args...))
	}
}

// Count is how many faults were recorded.
func (f *Faults) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// Report fails t if any fault was recorded, quoting the first few.
func (f *Faults) Report(t testing.TB) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n > 0 {
		t.Errorf("%d faults; the first: %s", f.n, strings.Join(f.first, "; "))
	}
}
