package pool

import (
	"os"
	"sync"
	"syscall"
)

// FreeListLen reports, for a pool at rest, the free count kept in its state
// word and the number of buffers found by walking every shard. The two must
// agree, and equal Allocated minus InUse.
func FreeListLen(p *Buffers) (counted, walked int) {
	counted = int(p.counts.state.Load() & stateFreeMask)
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		for b := s.head; b != nil; b = b.link {
			walked++
		}
		s.mu.Unlock()
	}
	return counted, walked
}

// SlabsUsed reports whether this build carves buffers from mapped slabs.
const SlabsUsed = slabsUsed

// Slabs is a pool's mapped memory, held apart from the pool: holding it
// does not keep the pool alive.
type Slabs = *slabs

// SlabsOf returns p's slabs (nil where slabs are not used).
func SlabsOf(p *Buffers) Slabs { return p.mem }

// Cleaned reports whether a collected pool's cleanup ran on m, and
// Unmapped whether it unmapped the slabs.
func (m *slabs) Cleaned() bool  { return m.cleaned.Load() }
func (m *slabs) Unmapped() bool { return m.unmapped.Load() }

// FailSlabMapsAfter makes p's slabs map n more times and then fail as if
// the system were out of memory; tries reports how many maps were asked
// for since.
func FailSlabMapsAfter(p *Buffers, n int) (tries func() int) {
	var mu sync.Mutex
	calls := 0
	m := p.mem
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mapFn = func(size int) ([]byte, error) {
		mu.Lock()
		calls++
		ok := calls <= n
		mu.Unlock()
		if !ok {
			return nil, os.NewSyscallError("mmap", syscall.ENOMEM)
		}
		return mapSlab(size)
	}
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return calls
	}
}
