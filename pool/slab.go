package pool

import (
	"sync/atomic"

	"github.com/ioreactor/reactor/internal/lock"
)

// Where buffers' bytes come from. Where slabs are used (slab_linux.go) a
// pool maps 1 MiB of anonymous memory at a time, outside the Go heap, and
// carves new buffers from it. A pool keeps its buffers for good, so on the
// Go heap they would count towards the garbage collector's goal and let
// the heap, and the resident memory, grow by as much again in garbage
// before each collection. A slab's pages are zero and become resident
// only when first written. What it saved per idle connection, measured
// with tests/bench, is in docs/performance.md ("Resident memory per idle
// connection").
//
// When the pool is collected its slabs are unmapped, but only if every
// buffer had been released: a buffer leaked (never released) may still be
// read through a slice its owner kept, so then all the pool's slabs stay
// mapped, as heap memory would stay alive. If mapping fails once, the
// pool's later buffers come from the Go heap.

// slabs is a pool's mapped memory. It does not point to the pool, so that
// the pool's cleanup can take it.
type slabs struct {
	counts *bufferCounts // the pool's, to see whether every buffer came back

	mu     lock.Mutex[slabsMu]
	cur    []byte                      // what is left of the newest slab
	all    [][]byte                    // every slab mapped
	failed bool                        // mapping failed: the Go heap from now on
	mapFn  func(n int) ([]byte, error) // mapSlab, unless a test injects failures
	carved atomic.Int64                // bytes of the buffers carved from them

	// What the cleanup did (read by tests): it ran, and it unmapped.
	cleaned, unmapped atomic.Bool
}

// slabsMu is the lock class of slabs.mu (internal/lock).
type slabsMu struct{}

// carve returns size bytes for a new buffer: from the current slab, a new
// one when it is used up, or the Go heap when m is nil or mapping fails.
func (m *slabs) carve(size int) []byte {
	if m == nil {
		return make([]byte, size)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failed {
		return make([]byte, size)
	}
	if len(m.cur) < size {
		mapf := m.mapFn
		if mapf == nil {
			mapf = mapSlab
		}
		s, err := mapf(max(1<<20/size, 1) * size)
		if err != nil {
			m.failed = true // not a system call per buffer from now on
			return make([]byte, size)
		}
		m.cur = s
		m.all = append(m.all, s)
	}
	d := m.cur[:size:size]
	m.cur = m.cur[size:]
	m.carved.Add(int64(size))
	return d
}

// unmapIfReleased is the cleanup of a collected pool: it unmaps the slabs
// if no buffer was in use.
// Nothing else can reach m then, so it takes no lock.
func (m *slabs) unmapIfReleased() {
	defer m.cleaned.Store(true)
	if m.counts.state.Load()>>32 != 0 {
		return
	}
	for _, s := range m.all {
		// A failure leaves the slab mapped: a leak, not a fault.
		_ = unmapSlab(s)
	}
	m.all, m.cur = nil, nil
	m.unmapped.Store(true)
}

// carvedBytes is the size of the buffers carved from slabs (0 for nil).
func (m *slabs) carvedBytes() int64 {
	if m == nil {
		return 0
	}
	return m.carved.Load()
}
