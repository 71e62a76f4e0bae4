package pool

import (
	"runtime"
	"sync/atomic"

	"github.com/ioreactor/reactor/internal/lock"
)

// DefaultBufferSize is the buffer size NewBuffers uses when given a size of
// zero or less: large enough for one read(2) to drain a typical socket
// receive burst, small enough that an idle connection holding one costs
// little.
const DefaultBufferSize = 16 << 10

// minBufferSize is the smallest buffer NewBuffers makes. Smaller buffers
// would spend more on their headers and on free-list traffic than on data.
const minBufferSize = 512

// Buffers is a pool of fixed-size byte buffers with counters, safe for
// concurrent use. Create one with NewBuffers; the zero value is not usable.
//
// Buffers never shrink in this version: a buffer, once allocated, stays
// with the pool until the pool itself is dropped, so Stats().Allocated only
// grows. The pool allocates a new buffer only when no free one is left, so
// Allocated stays close to the highest number of buffers in use at once.
// On Linux the buffers' bytes live in 1 MiB slabs mapped outside the Go
// heap (slab.go).
type Buffers struct {
	// Free buffers sit on a few mutex-protected stacks (shards), linked
	// through the buffers themselves, so pushing and popping never
	// allocate. A buffer always returns to the shard allocation assigned
	// it (round-robin); Get starts at a shard picked by the in-use count it
	// saw and walks on from there. Gets running at the same time see
	// different counts, so they start on different shards, and concurrent
	// Gets and Releases mostly take different locks.
	//
	// One atomic word, state, counts the free buffers that no Get has
	// claimed yet and the buffers in use:
	//
	//	bits  0-31  free:  buffers on the shards, minus those claimed by a
	//	            Get that has not popped its buffer yet
	//	bits 32-63  inUse: buffers handed out and not yet released
	//
	// Get claims a free buffer by moving one from free to inUse with a
	// compare-and-swap before it touches any shard; Release pushes the
	// buffer onto its shard first and only then moves it from inUse to
	// free. A claim therefore always has a buffer on some shard to pop,
	// and Get allocates only when it saw free at zero. Keeping both counts
	// in one word makes a Get or a Release cost one contended atomic, and
	// gives Peak an exact InUse.
	size   int
	mask   uint32 // len(shards)-1; len(shards) is a power of two
	shards []bufferShard

	counts    *bufferCounts // state, in an object of its own (see slabs)
	allocated atomic.Int64
	peak      atomic.Int64

	mem *slabs // where new buffers' bytes come from; nil: the Go heap
}

// bufferCounts holds Buffers.state (see the bit layout above) on a cache
// line of its own. It is apart from Buffers so that the cleanup of a
// pool's slabs, which must not reach the pool, can still read InUse.
type bufferCounts struct {
	state atomic.Uint64
	_     [56]byte
}

// Bit layout of Buffers.state.
const (
	stateFreeOne  uint64 = 1
	stateInUseOne uint64 = 1 << 32
	stateFreeMask uint64 = stateInUseOne - 1
	stateMaxCount uint64 = stateFreeMask

	// stateRelease adds one to free and subtracts one from inUse in a
	// single Add. It cannot borrow: the buffer being released was counted
	// in inUse by the Get that handed it out.
	stateRelease uint64 = stateFreeOne + ^(stateInUseOne - 1)
)

// bufferShard is one free stack. The trailing pad keeps the hot fields of
// neighbouring shards off one cache line, so shards do not contend through
// false sharing.
type bufferShard struct {
	mu   lock.Mutex[bufferShardMu]
	head *Buffer // top of the stack, linked through Buffer.link; guarded by mu

	// n is the length of the stack, written under mu and read without it
	// so that Get can skip an empty shard without taking its lock. When
	// free buffers are fewer than shards most shards are empty, and a walk
	// that locked each would cost more than this counter does per push.
	n atomic.Int32

	// Totals, kept per shard and under mu so that counting costs neither
	// an atomic nor a shared cache line. Stats takes mu to read them.
	pops     uint64 // Gets served from this shard
	releases uint64 // buffers pushed back onto this shard

	_ [64]byte
}

// bufferShardMu is the lock class of bufferShard.mu (internal/lock).
type bufferShardMu struct{}

// NewBuffers returns an empty pool of buffers of size bytes each. A size of
// zero or less means DefaultBufferSize; a positive size below 512 is raised
// to 512. Buffers are allocated on demand by Get.
func NewBuffers(size int) *Buffers {
	switch {
	case size <= 0:
		size = DefaultBufferSize
	case size < minBufferSize:
		size = minBufferSize
	}
	// One shard per P is enough to keep the running goroutines on different
	// locks most of the time; at least four so that a 1- or 2-CPU machine
	// with many I/O threads still spreads its Releases.
	n := 4
	for n < runtime.GOMAXPROCS(0) && n < 64 {
		n <<= 1
	}
	p := &Buffers{
		size:   size,
		mask:   uint32(n - 1),
		shards: make([]bufferShard, n),
		counts: new(bufferCounts),
	}
	if slabsUsed {
		p.mem = &slabs{counts: p.counts}
		runtime.AddCleanup(p, (*slabs).unmapIfReleased, p.mem)
	}
	return p
}

// Owns reports whether b came from p.
func (p *Buffers) Owns(b *Buffer) bool { return b.pool == p }

// Size reports the capacity of every buffer in the pool, in bytes.
func (p *Buffers) Size() int { return p.size }

// Get returns an empty buffer: Len is 0, Cap is Size, Next is nil. The
// caller owns it until it calls Release.
func (p *Buffers) Get() *Buffer {
	var (
		claimed bool
		inUse   uint64
		counts  = p.counts
	)
	for {
		old := counts.state.Load()
		inUse = old >> 32
		if inUse == stateMaxCount {
			panic("pool: too many buffers in use")
		}
		next := old + stateInUseOne
		claimed = old&stateFreeMask > 0
		if claimed {
			next -= stateFreeOne
		}
		if counts.state.CompareAndSwap(old, next) {
			break
		}
	}
	p.notePeak(int64(inUse + 1))

	if !claimed {
		// Homes go round-robin from shard 0, where a lone Get starts.
		home := uint32(p.allocated.Add(1)-1) & p.mask
		b := &Buffer{data: p.mem.carve(p.size), pool: p, home: home}
		b.state.Store(uint32(bufferInUse))
		trackGet(b)
		return b
	}
	// Start where inUse points: Gets running at the same time each saw a
	// different value, and unlike a random number (math/rand/v2 costs
	// about as much as the rest of Get) it is free.
	b := p.pop(uint32(inUse))
	// A buffer on a free list is free unless the pool itself is corrupt.
	if !b.state.CompareAndSwap(uint32(bufferFree), uint32(bufferInUse)) {
		panic("pool: free list holds a buffer in use")
	}
	trackGet(b)
	return b
}

// pop takes a buffer off some shard, starting at start. The caller has
// claimed one in state, so a buffer is on some shard already: the walk can
// miss it only when another Get takes it, and that Get's own claim then
// leaves one for this walk to find on a later pass.
func (p *Buffers) pop(start uint32) *Buffer {
	for i := start; ; i++ {
		s := &p.shards[i&p.mask]
		if s.n.Load() == 0 {
			continue
		}
		s.mu.Lock()
		b := s.head
		if b != nil {
			s.head = b.link
			b.link = nil
			s.n.Add(-1)
			s.pops++
		}
		s.mu.Unlock()
		if b != nil {
			return b
		}
	}
}

// put returns b, already marked free and emptied, to its home shard.
func (p *Buffers) put(b *Buffer) {
	s := &p.shards[b.home]
	s.mu.Lock()
	b.link = s.head
	s.head = b
	s.n.Add(1)
	s.releases++
	s.mu.Unlock()
	// Only now may a Get claim it; see the Buffers comment.
	p.counts.state.Add(stateRelease)
	// Until the count is down, the pool must stay reachable: its slabs'
	// cleanup reads the count (slab.go) and would keep them mapped.
	runtime.KeepAlive(p)
}

// notePeak raises peak to v if v is higher.
func (p *Buffers) notePeak(v int64) {
	for {
		old := p.peak.Load()
		if v <= old || p.peak.CompareAndSwap(old, v) {
			return
		}
	}
}

// GetChain returns enough empty buffers, linked by Next, to hold n bytes;
// always at least one, so n <= 0 gives a single buffer. Release on the
// first buffer returns them all.
func (p *Buffers) GetChain(n int) *Buffer {
	count := 1
	if n > p.size {
		count = (n + p.size - 1) / p.size
	}
	head := p.Get()
	tail := head
	for range count - 1 {
		b := p.Get()
		tail.next = b
		tail = b
	}
	return head
}

// ChainFrom returns a chain of buffers from p holding a copy of the
// slices of data, one after another, every buffer full except perhaps the
// last. Empty data gives one empty buffer. It saves writers of large or
// gathered payloads from filling a chain by hand.
func ChainFrom(p *Buffers, data ...[]byte) *Buffer {
	n := 0
	for _, d := range data {
		n += len(d)
	}
	head := p.GetChain(n)
	b := head
	for _, d := range data {
		for len(d) > 0 {
			if b.n == len(b.data) {
				b = b.next
			}
			d = d[b.Append(d):]
		}
	}
	return head
}

// BufferStats is a snapshot of a pool's counters. The fields are read one
// after another, so a snapshot taken while other goroutines use the pool
// need not add up exactly; at rest, InUse == Gets - Releases.
type BufferStats struct {
	Size      int    // bytes per buffer
	Allocated int64  // buffers created (in the pool or in use); the pool never frees one
	Mapped    int64  // bytes of those buffers that live in slabs mapped outside the Go heap (Linux); the others live on the Go heap
	InUse     int64  // buffers handed out and not yet released
	Peak      int64  // highest InUse seen
	Gets      uint64 // buffers handed out in total; a chain counts each of its buffers
	Releases  uint64 // buffers given back in total; a chain counts each of its buffers
}

// Stats returns the pool's counters.
func (p *Buffers) Stats() BufferStats {
	st := BufferStats{
		Size:      p.size,
		Allocated: p.allocated.Load(),
		InUse:     int64(p.counts.state.Load() >> 32),
		Peak:      p.peak.Load(),
		Mapped:    p.mem.carvedBytes(),
	}
	// Every Get either pops a buffer or allocates one.
	st.Gets = uint64(st.Allocated)
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		st.Gets += s.pops
		st.Releases += s.releases
		s.mu.Unlock()
	}
	return st
}

// bufferState says who owns a buffer.
type bufferState uint32

const (
	// bufferFree: the buffer is on a free list and only the pool touches
	// it. Get moves it to bufferInUse after popping it.
	bufferFree bufferState = iota
	// bufferInUse: the buffer was handed out and its owner may use it.
	// Release moves it back to bufferFree with a compare-and-swap, so of
	// two Releases, even racing ones, exactly one wins.
	bufferInUse
)

// Buffer is one fixed-size buffer, optionally the head of a chain linked by
// Next. It has one owner at a time: the goroutine that got it from a pool,
// or the one it was handed to. Its methods are not safe for concurrent use
// except that racing Releases are detected.
//
// A Buffer is released exactly once. Releasing it again while it is still
// in the pool panics with "pool: buffer released twice". A stale pointer
// released after the pool has handed the buffer out again cannot be told
// apart from its new owner: that Release succeeds and takes the buffer from
// under the new owner. Only a leak-checking build, which records owners,
// can catch that.
type Buffer struct {
	data  []byte // len(data) is the pool's size, fixed for life
	n     int    // bytes filled: data[:n]
	next  *Buffer
	pool  *Buffers
	link  *Buffer       // free-list link, guarded by the home shard's mutex
	home  uint32        // index of the shard this buffer returns to
	state atomic.Uint32 // a bufferState
}

// Bytes returns the filled part of the buffer. Its capacity is cut to its
// length, so appending to it copies instead of writing into the free tail
// behind the buffer's back.
func (b *Buffer) Bytes() []byte { return b.data[:b.n:b.n] }

// Space returns the free tail of the buffer, for a read to fill. Call
// Commit with the number of bytes written into it.
func (b *Buffer) Space() []byte { return b.data[b.n:] }

// Commit extends the filled part by n bytes, typically after a read into
// Space. It panics if n is negative or the buffer would exceed its
// capacity.
func (b *Buffer) Commit(n int) {
	if n < 0 {
		panic("pool: negative commit")
	}
	if n > len(b.data)-b.n {
		panic("pool: commit past capacity")
	}
	b.n += n
}

// Append copies as much of p as fits into the free tail and returns the
// number of bytes copied.
func (b *Buffer) Append(p []byte) int {
	c := copy(b.data[b.n:], p)
	b.n += c
	return c
}

// Len reports the number of filled bytes in this buffer alone.
func (b *Buffer) Len() int { return b.n }

// Cap reports the capacity of this buffer, the pool's Size.
func (b *Buffer) Cap() int { return len(b.data) }

// Reset empties this buffer (Len becomes 0). It leaves the chain alone.
func (b *Buffer) Reset() { b.n = 0 }

// Next returns the buffer after this one in its chain, or nil.
func (b *Buffer) Next() *Buffer { return b.next }

// SetNext links n after this buffer, replacing any previous link. The
// caller must not make a cycle; Release on one would panic when it met a
// buffer a second time.
func (b *Buffer) SetNext(n *Buffer) { b.next = n }

// ChainLen reports the total filled bytes of this buffer and every buffer
// after it.
func (b *Buffer) ChainLen() int {
	total := 0
	for ; b != nil; b = b.next {
		total += b.n
	}
	return total
}

// Release returns this buffer and every buffer after it in the chain to
// their pools. Neither it nor any buffer of the chain may be used after,
// and neither may any slice taken from Bytes or Space: the bytes go to
// the next Get, and on Linux, once the pool itself is collected, they are
// unmapped (slab.go), so a slice kept past Release may then fault the
// process. It panics with "pool: buffer released twice" if it meets a
// buffer that is already free.
func (b *Buffer) Release() {
	for b != nil {
		// Win the buffer first: only the winner of this swap may touch
		// the other fields, so a racing second Release reads nothing.
		if !b.state.CompareAndSwap(uint32(bufferInUse), uint32(bufferFree)) {
			panic("pool: buffer released twice")
		}
		trackRelease(b)
		next := b.next
		b.next = nil
		b.n = 0
		b.pool.put(b)
		b = next
	}
}
