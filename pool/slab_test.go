package pool_test

import (
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/ioreactor/reactor/pool"
)

// TestBuffersLiveOutsideTheGoHeap: on Linux (without the race detector) a
// pool's buffers are carved from mapped slabs, so 4 MiB of buffers add
// only their headers to the Go heap, and the garbage collector's goal
// does not grow with the pool.
func TestBuffersLiveOutsideTheGoHeap(t *testing.T) {
	if !pool.SlabsUsed {
		t.Skipf("buffers come from the Go heap on %s/%s or under the race detector (which watches only the Go heap)", runtime.GOOS, runtime.GOARCH)
	}
	p := pool.NewBuffers(16 << 10)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	bufs := make([]*pool.Buffer, 256) // 4 MiB
	for i := range bufs {
		bufs[i] = p.Get()
	}
	runtime.ReadMemStats(&after)
	if m := p.Stats().Mapped; m != 256*16<<10 {
		t.Errorf("Stats().Mapped = %d, want the 256 buffers' %d bytes", m, 256*16<<10)
	}
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 1<<20 {
		t.Errorf("256 buffers of 16 KiB grew the Go heap by %d bytes, want their headers only", grew)
	}
	for _, b := range bufs {
		b.Release()
	}
}

// TestSlabBuffersAreDisjoint: buffers carved from slabs are whole, do not
// overlap, cannot be grown into a neighbour (capacity is the size), and
// keep what was written to them.
func TestSlabBuffersAreDisjoint(t *testing.T) {
	const size = 4096
	p := pool.NewBuffers(size)
	n := 3 * (1 << 20) / size // three slabs' worth
	bufs := make([]*pool.Buffer, n)
	starts := map[uintptr]bool{}
	for i := range bufs {
		b := p.Get()
		s := b.Space()
		if len(s) != size || cap(s) != size {
			t.Fatalf("buffer %d: space %d, capacity %d, want %d", i, len(s), cap(s), size)
		}
		for j := range s {
			s[j] = byte(i)
		}
		b.Commit(size)
		addr := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
		if starts[addr] {
			t.Fatalf("buffer %d starts where another does", i)
		}
		starts[addr] = true
		bufs[i] = b
	}
	for i, b := range bufs {
		for j, c := range b.Bytes() {
			if c != byte(i) {
				t.Fatalf("buffer %d byte %d is %d: another buffer wrote over it", i, j, c)
			}
		}
		b.Release()
	}
}

// TestCollectedPoolUnmapsItsSlabs: a pool that is dropped with every
// buffer released gives its slabs back; one dropped with a buffer never
// released keeps them mapped, so the slice its owner kept stays readable.
func TestCollectedPoolUnmapsItsSlabs(t *testing.T) {
	if !pool.SlabsUsed {
		t.Skipf("buffers come from the Go heap on %s/%s or under the race detector (which watches only the Go heap)", runtime.GOOS, runtime.GOARCH)
	}
	released, leaked, kept := dropPools()
	// A bufleak build's tracker holds every buffer in use, to name its
	// taker, and through it the pool: a pool with a leaked buffer is
	// never collected there, and only the other half can be checked.
	leakedCollects := !pool.LeakChecking()
	deadline := time.Now().Add(5 * time.Second)
	for !released.Cleaned() || (leakedCollects && !leaked.Cleaned()) {
		if time.Now().After(deadline) {
			t.Fatalf("the dropped pools' cleanups did not run within 5 s (released: %t, leaked: %t)", released.Cleaned(), leaked.Cleaned())
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if !released.Unmapped() {
		t.Fatal("a collected pool whose buffers were all released kept its slabs")
	}
	if leaked.Unmapped() {
		t.Fatal("a collected pool with a buffer never released unmapped its slabs")
	}
	for i, c := range kept {
		if c != 7 {
			t.Fatalf("the leaked buffer's byte %d reads %d, want 7", i, c)
		}
	}
}

// dropPools makes two pools and drops them: one with every buffer
// released, one with a buffer leaked whose bytes the caller keeps.
func dropPools() (released, leaked pool.Slabs, kept []byte) {
	p := pool.NewBuffers(4096)
	for range 3 {
		p.Get().Release()
	}
	q := pool.NewBuffers(4096)
	b := q.Get()
	kept = b.Space()
	for i := range kept {
		kept[i] = 7
	}
	return pool.SlabsOf(p), pool.SlabsOf(q), kept
}

// TestFailedSlabMapFallsBackToTheHeap: when mapping a slab fails (out of
// memory, or a limit on mappings), Get still returns a working buffer,
// from the Go heap, and the pool stops trying to map: one failed system
// call, not one per buffer. The buffers already carved stay where they are.
func TestFailedSlabMapFallsBackToTheHeap(t *testing.T) {
	if !pool.SlabsUsed {
		t.Skipf("buffers come from the Go heap on %s/%s or under the race detector: no slab to fail", runtime.GOOS, runtime.GOARCH)
	}
	const size = 16 << 10
	const perSlab = (1 << 20) / size
	p := pool.NewBuffers(size)
	tries := pool.FailSlabMapsAfter(p, 1)
	bufs := make([]*pool.Buffer, 3*perSlab) // one slab's worth mapped, the rest from the heap
	for i := range bufs {
		b := p.Get()
		s := b.Space()
		if len(s) != size {
			t.Fatalf("buffer %d: %d bytes of space, want %d", i, len(s), size)
		}
		for j := range s {
			s[j] = byte(i)
		}
		b.Commit(size)
		bufs[i] = b
	}
	if n := tries(); n != 2 {
		t.Errorf("%d slab maps tried, want 2 (one that worked, one that failed, then none)", n)
	}
	if m := p.Stats().Mapped; m != perSlab*size {
		t.Errorf("Stats().Mapped = %d, want the first slab's %d", m, perSlab*size)
	}
	for i, b := range bufs {
		for j, c := range b.Bytes() {
			if c != byte(i) {
				t.Fatalf("buffer %d byte %d is %d: buffers overlap", i, j, c)
			}
		}
		b.Release()
	}
	if st := p.Stats(); st.InUse != 0 || st.Allocated != int64(len(bufs)) {
		t.Errorf("after releasing: %d in use, %d allocated; want 0 and %d", st.InUse, st.Allocated, len(bufs))
	}
}
