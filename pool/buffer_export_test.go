package pool

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
