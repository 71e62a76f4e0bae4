package pool

// Resuming reports how many parked functions wait for a worker back.
func Resuming(b *Blocking) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.resumers)
}
