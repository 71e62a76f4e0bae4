package seq

// SetReleased and Released reach the saturating count of released numbers,
// which a test would otherwise need 2^31 operations to drive.
func (l *List[T]) SetReleased(r uint32) { l.released = r }

func (l *List[T]) Released() uint32 { return l.released }

// RingLen reports the ring's capacity, so a test can see that a refused Put
// left it alone.
func (l *List[T]) RingLen() int { return l.ringLen() }
