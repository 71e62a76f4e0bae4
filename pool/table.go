package pool

import (
	"sync/atomic"

	"github.com/ioreactor/reactor/internal/lock"
	"github.com/ioreactor/reactor/poller"
)

// Handler receives the events of one registration. It runs on an I/O
// thread and must not block.
type Handler interface {
	HandleEvent(l *Loop, ev *poller.Event)
}

// Registration ties a token, the value the kernel hands back with each
// event, to the Handler that owns the descriptor. The owner embeds it, so
// registering allocates nothing. The kernel never holds a Go pointer: it
// holds the token, and Table maps the token back.
type Registration struct {
	token uint64
	h     Handler
}

// Token is the value to give the poller for this registration. It is 0
// until Table.Insert and after Table.Remove.
func (r *Registration) Token() uint64 { return atomic.LoadUint64(&r.token) }

// A token is a slot index (low 32 bits) and the slot's generation (the 24
// bits above, so that a token fits the 56 bits a ring-backed poller
// carries beside an operation code). Generations start at 1, so token 0 is
// never valid, and a slot is never handed out twice with the same
// generation before 2^24 reuses of that one slot. An event that was dequeued before its descriptor was
// removed carries the old generation and is dropped by Lookup: a reused
// descriptor number never receives another connection's events.
const (
	chunkBits = 10
	chunkSize = 1 << chunkBits
	maxChunks = 1 << 14 // 16M registrations at once
	genMask   = 1<<24 - 1
)

type slot struct {
	r   atomic.Pointer[Registration]
	gen uint32 // guarded by Table.mu
}

// Table maps tokens to registrations. Lookup is lock-free and may run on
// any I/O thread; Insert and Remove take a mutex.
type Table struct {
	mu     lock.Mutex[tableMu]
	chunks [maxChunks]atomic.Pointer[[chunkSize]slot]
	free   []uint32 // released slot indexes, reused last-in first-out
	next   uint32   // first index never used
	n      atomic.Int64
}

// tableMu is the lock class of Table.mu (internal/lock).
type tableMu struct{}

// Insert publishes r with handler h and returns its token.
func (t *Table) Insert(r *Registration, h Handler) uint64 {
	t.mu.Lock()
	var idx uint32
	if k := len(t.free); k > 0 {
		idx = t.free[k-1]
		t.free = t.free[:k-1]
	} else {
		idx = t.next
		if idx>>chunkBits >= maxChunks {
			t.mu.Unlock()
			panic("pool: registration table full")
		}
		t.next++
		if idx&(chunkSize-1) == 0 {
			t.chunks[idx>>chunkBits].Store(new([chunkSize]slot))
		}
	}
	s := &t.chunks[idx>>chunkBits].Load()[idx&(chunkSize-1)]
	s.gen = (s.gen + 1) & genMask
	if s.gen == 0 {
		s.gen = 1
	}
	tok := uint64(s.gen)<<32 | uint64(idx)
	r.h = h
	atomic.StoreUint64(&r.token, tok)
	s.r.Store(r)
	t.n.Add(1)
	t.mu.Unlock()
	return tok
}

// Remove unpublishes r. Events that carry its token are dropped from now on.
// Removing a registration that is not in the table panics.
func (t *Table) Remove(r *Registration) {
	tok := r.Token()
	idx := uint32(tok)
	t.mu.Lock()
	c := t.chunks[idx>>chunkBits].Load()
	if tok == 0 || c == nil || c[idx&(chunkSize-1)].r.Load() != r {
		t.mu.Unlock()
		panic("pool: removing a registration that is not in the table")
	}
	c[idx&(chunkSize-1)].r.Store(nil)
	atomic.StoreUint64(&r.token, 0)
	t.free = append(t.free, idx)
	t.n.Add(-1)
	t.mu.Unlock()
}

// Lookup returns the handler registered under token, or nil when the token
// is stale (its registration was removed, perhaps replaced by another).
func (t *Table) Lookup(token uint64) Handler {
	idx := uint32(token)
	if idx>>chunkBits >= maxChunks {
		return nil
	}
	c := t.chunks[idx>>chunkBits].Load()
	if c == nil {
		return nil
	}
	r := c[idx&(chunkSize-1)].r.Load()
	if r == nil || atomic.LoadUint64(&r.token) != token {
		return nil
	}
	return r.h
}

// Len reports how many registrations are in the table.
func (t *Table) Len() int { return int(t.n.Load()) }

// Each calls fn for every registration present when it reaches it. It
// holds no lock while fn runs, so fn may close what it is given.
func (t *Table) Each(fn func(h Handler)) {
	t.mu.Lock()
	end := t.next
	t.mu.Unlock()
	for idx := uint32(0); idx < end; idx++ {
		c := t.chunks[idx>>chunkBits].Load()
		if c == nil {
			continue
		}
		if r := c[idx&(chunkSize-1)].r.Load(); r != nil {
			fn(r.h)
		}
	}
}
