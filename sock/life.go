package sock

import "sync/atomic"

// lifetime is a connection's reference count and closed bit in one word,
// modelled on internal/poll's fdMutex.
//
//	bit 63     closed: no new reference can be taken
//	bits 0-62  references held
//
// Rules: the connection starts with one reference, its own, dropped by
// close. Every operation that may touch the descriptor takes a reference
// first (incref) and fails with ErrClosed when that is refused. Whoever
// drops the last reference after close owns the teardown. A count that
// goes below zero is a bug and panics.
type lifetime struct{ v atomic.Uint64 }

const (
	lifeClosed  = uint64(1) << 63
	lifeRefMask = lifeClosed - 1
)

func (l *lifetime) init() { l.v.Store(1) }

// incref takes a reference unless the connection is closed.
func (l *lifetime) incref() bool {
	for {
		old := l.v.Load()
		if old&lifeClosed != 0 {
			return false
		}
		if old&lifeRefMask == lifeRefMask {
			panic("sock: too many references to one connection")
		}
		if l.v.CompareAndSwap(old, old+1) {
			return true
		}
	}
}

// decref drops a reference and reports whether it was the last one after
// close, in which case the caller must tear the connection down.
func (l *lifetime) decref() bool {
	v := l.v.Add(^uint64(0))
	if v&lifeRefMask == lifeRefMask {
		panic("sock: connection reference count below zero")
	}
	return v == lifeClosed
}

// markClosed sets the closed bit and reports whether this call set it.
func (l *lifetime) markClosed() bool {
	for {
		old := l.v.Load()
		if old&lifeClosed != 0 {
			return false
		}
		if l.v.CompareAndSwap(old, old|lifeClosed) {
			return true
		}
	}
}

// acquire takes one more reference for a caller that already holds one,
// even after close: an operation handed to the kernel by a holder keeps
// the connection until its completion.
func (l *lifetime) acquire() {
	if l.v.Add(1)&lifeRefMask == 0 {
		panic("sock: too many references to one connection")
	}
}

func (l *lifetime) closed() bool { return l.v.Load()&lifeClosed != 0 }
