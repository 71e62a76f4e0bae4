package pool

// FreeListLen reports, for a pool at rest, the free count kept in its state
// word and the number of buffers found by walking every shard. The two must
// agree, and equal Allocated minus InUse.
func FreeListLen(p *Buffers) (counted, walked int) {
	counted = int(p.state.Load() & stateFreeMask)
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
