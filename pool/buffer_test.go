package pool_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/ioreactor/reactor/pool"
)

// bufferPanic runs f and returns the value it panicked with, or nil.
func bufferPanic(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// wantBufferPanic fails t unless f panics with exactly msg.
func wantBufferPanic(t *testing.T, msg string, f func()) {
	t.Helper()
	got := bufferPanic(f)
	if got == nil {
		t.Fatalf("no panic, want %q", msg)
	}
	if s, ok := got.(string); !ok || s != msg {
		t.Fatalf("panic %v, want %q", got, msg)
	}
}

// chainCount reports the number of buffers in the chain starting at b.
func chainCount(b *pool.Buffer) int {
	n := 0
	for ; b != nil; b = b.Next() {
		n++
	}
	return n
}

func TestNewBuffersSize(t *testing.T) {
	for _, tc := range []struct{ in, want int }{
		{0, pool.DefaultBufferSize},
		{-1, pool.DefaultBufferSize},
		{1, 512},
		{511, 512},
		{512, 512},
		{4096, 4096},
		{100000, 100000},
	} {
		if got := pool.NewBuffers(tc.in).Size(); got != tc.want {
			t.Errorf("NewBuffers(%d).Size() = %d, want %d", tc.in, got, tc.want)
		}
	}
	if pool.DefaultBufferSize != 16384 {
		t.Errorf("DefaultBufferSize = %d, want 16384", pool.DefaultBufferSize)
	}
}

func TestBufferGetIsEmpty(t *testing.T) {
	p := pool.NewBuffers(1024)
	b := p.Get()
	if b.Len() != 0 || b.Cap() != 1024 || len(b.Bytes()) != 0 || len(b.Space()) != 1024 || b.Next() != nil {
		t.Fatalf("Get: Len %d Cap %d Bytes %d Space %d Next %p, want 0 1024 0 1024 nil",
			b.Len(), b.Cap(), len(b.Bytes()), len(b.Space()), b.Next())
	}
	st := p.Stats()
	if st.Size != 1024 || st.Allocated != 1 || st.InUse != 1 || st.Gets != 1 || st.Releases != 0 {
		t.Fatalf("Stats after one Get = %+v", st)
	}
	b.Release()
}

func TestBufferReusedBufferIsEmpty(t *testing.T) {
	p := pool.NewBuffers(512)
	b := p.Get()
	b.Append([]byte("dirty"))
	b.SetNext(p.Get())
	b.Release()
	for range 10 {
		b = p.Get()
		if b.Len() != 0 || b.Next() != nil {
			t.Fatalf("reused buffer: Len %d Next %p, want 0 nil", b.Len(), b.Next())
		}
		b.Release()
	}
	if st := p.Stats(); st.Allocated != 2 {
		t.Fatalf("Allocated = %d after sequential reuse, want 2", st.Allocated)
	}
}

func TestBufferAppendCommitSpace(t *testing.T) {
	p := pool.NewBuffers(512)
	b := p.Get()
	defer b.Release()

	if n := b.Append([]byte("hello ")); n != 6 {
		t.Fatalf("Append = %d, want 6", n)
	}
	sp := b.Space()
	if len(sp) != 512-6 {
		t.Fatalf("len(Space) = %d, want %d", len(sp), 512-6)
	}
	copy(sp, "world") // as a read(2) would
	b.Commit(5)
	if got := string(b.Bytes()); got != "hello world" {
		t.Fatalf("Bytes = %q, want %q", got, "hello world")
	}
	if cap(b.Bytes()) != b.Len() {
		t.Fatalf("cap(Bytes) = %d, want Len %d", cap(b.Bytes()), b.Len())
	}

	// Append stops at capacity and says how much it took.
	big := bytes.Repeat([]byte{'x'}, 600)
	if n := b.Append(big); n != 512-11 {
		t.Fatalf("Append of 600 into %d free = %d, want %d", 512-11, n, 512-11)
	}
	if b.Len() != 512 || len(b.Space()) != 0 {
		t.Fatalf("full buffer: Len %d Space %d, want 512 0", b.Len(), len(b.Space()))
	}
	if n := b.Append([]byte("more")); n != 0 {
		t.Fatalf("Append into full buffer = %d, want 0", n)
	}
	b.Commit(0)

	b.Reset()
	if b.Len() != 0 || len(b.Space()) != 512 {
		t.Fatalf("after Reset: Len %d Space %d, want 0 512", b.Len(), len(b.Space()))
	}
}

func TestBufferCommitPastCapacityPanics(t *testing.T) {
	p := pool.NewBuffers(512)
	b := p.Get()
	defer b.Release()
	b.Commit(500)
	wantBufferPanic(t, "pool: commit past capacity", func() { b.Commit(13) })
	if b.Len() != 500 {
		t.Fatalf("Len = %d after failed Commit, want 500", b.Len())
	}
	wantBufferPanic(t, "pool: negative commit", func() { b.Commit(-1) })
	b.Commit(12)
	if b.Len() != 512 {
		t.Fatalf("Len = %d, want 512", b.Len())
	}
}

func TestBufferGetChainCount(t *testing.T) {
	const size = 1024
	p := pool.NewBuffers(size)
	for _, tc := range []struct{ n, want int }{
		{-5, 1},
		{0, 1},
		{1, 1},
		{size - 1, 1},
		{size, 1},
		{size + 1, 2},
		{10 * size, 10},
		{10*size + 1, 11},
	} {
		c := p.GetChain(tc.n)
		if got := chainCount(c); got != tc.want {
			t.Errorf("GetChain(%d) gave %d buffers, want %d", tc.n, got, tc.want)
		}
		for b := c; b != nil; b = b.Next() {
			if b.Len() != 0 || b.Cap() != size {
				t.Errorf("GetChain(%d): buffer Len %d Cap %d, want 0 %d", tc.n, b.Len(), b.Cap(), size)
			}
		}
		if c.ChainLen() != 0 {
			t.Errorf("GetChain(%d).ChainLen() = %d, want 0", tc.n, c.ChainLen())
		}
		c.Release()
	}
	if st := p.Stats(); st.InUse != 0 {
		t.Fatalf("InUse = %d after releasing every chain, want 0", st.InUse)
	}
}

func TestBufferReleaseChainReturnsAll(t *testing.T) {
	p := pool.NewBuffers(512)
	c := p.GetChain(5 * 512)
	if st := p.Stats(); st.InUse != 5 || st.Allocated != 5 || st.Gets != 5 {
		t.Fatalf("after GetChain: %+v, want InUse, Allocated, Gets 5", st)
	}
	// A chain built by hand from single buffers releases the same way.
	extra := p.Get()
	last := c
	for last.Next() != nil {
		last = last.Next()
	}
	last.SetNext(extra)

	c.Release()
	st := p.Stats()
	if st.InUse != 0 || st.Releases != 6 || st.Allocated != 6 {
		t.Fatalf("after Release: %+v, want InUse 0, Releases 6, Allocated 6", st)
	}
	if counted, walked := pool.FreeListLen(p); counted != 6 || walked != 6 {
		t.Fatalf("free list: counted %d walked %d, want 6 6", counted, walked)
	}
}

func TestBufferDoubleReleasePanics(t *testing.T) {
	p := pool.NewBuffers(512)
	b := p.Get()
	b.Release()
	wantBufferPanic(t, "pool: buffer released twice", b.Release)

	// The failed Release must not have put the buffer on the free list
	// again, or two Gets would share it.
	st := p.Stats()
	if st.InUse != 0 || st.Releases != 1 {
		t.Fatalf("after double release: %+v, want InUse 0, Releases 1", st)
	}
	if counted, walked := pool.FreeListLen(p); counted != 1 || walked != 1 {
		t.Fatalf("free list: counted %d walked %d, want 1 1", counted, walked)
	}
	if x, y := p.Get(), p.Get(); x == y {
		t.Fatal("two Gets returned the same buffer")
	}
}

func TestBufferReleaseOfReleasedChainMemberPanics(t *testing.T) {
	p := pool.NewBuffers(512)
	c := p.GetChain(3 * 512)
	second := c.Next()
	c.Release()
	wantBufferPanic(t, "pool: buffer released twice", second.Release)
}

func TestBufferConcurrentDoubleReleasePanicsOnce(t *testing.T) {
	p := pool.NewBuffers(512)
	const rounds = 1000
	for i := range rounds {
		b := p.Get()
		var (
			start  = make(chan struct{})
			wg     sync.WaitGroup
			panics [2]any
		)
		for g := range panics {
			wg.Go(func() {
				<-start
				panics[g] = bufferPanic(b.Release)
			})
		}
		close(start)
		wg.Wait()

		n := 0
		for _, v := range panics {
			if v == nil {
				continue
			}
			n++
			if v != "pool: buffer released twice" {
				t.Fatalf("round %d: panic %v", i, v)
			}
		}
		if n != 1 {
			t.Fatalf("round %d: %d of 2 racing Releases panicked, want 1", i, n)
		}
	}
	st := p.Stats()
	if st.InUse != 0 || st.Releases != rounds || st.Allocated != 1 {
		t.Fatalf("after %d rounds: %+v, want InUse 0, Releases %d, Allocated 1", rounds, st, rounds)
	}
}

func TestBufferPeakTracksMaximum(t *testing.T) {
	p := pool.NewBuffers(512)
	var held []*pool.Buffer
	get := func(n int) {
		for range n {
			held = append(held, p.Get())
		}
	}
	release := func(n int) {
		for range n {
			held[len(held)-1].Release()
			held = held[:len(held)-1]
		}
	}
	check := func(inUse, peak int64) {
		t.Helper()
		if st := p.Stats(); st.InUse != inUse || st.Peak != peak {
			t.Fatalf("InUse %d Peak %d, want %d %d", st.InUse, st.Peak, inUse, peak)
		}
	}

	check(0, 0)
	get(5)
	check(5, 5)
	release(3)
	check(2, 5)
	get(2)
	check(4, 5)
	get(3)
	check(7, 7)
	release(7)
	check(0, 7)
	c := p.GetChain(9 * 512)
	check(9, 9)
	c.Release()
	check(0, 9)
	if st := p.Stats(); st.Allocated != 9 {
		t.Fatalf("Allocated = %d, want 9 (the peak)", st.Allocated)
	}
}

// TestBufferConcurrentGetRelease hammers one pool from many goroutines, each
// holding one buffer at a time and checking that nobody else wrote into it.
//
// Allocated must stay at or below the number of goroutines: Get allocates
// only after it saw no unclaimed free buffer, and at that moment every
// buffer is held by, being released by, or claimed by one of the other
// goroutines, each of which has at most one.
func TestBufferConcurrentGetRelease(t *testing.T) {
	const goroutines = 8
	iters := 100_000
	if testing.Short() {
		iters = 10_000
	}
	p := pool.NewBuffers(512)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			mark := bytes.Repeat([]byte{byte(g)}, 16)
			for i := range iters {
				b := p.Get()
				if b.Len() != 0 || b.Next() != nil {
					errs <- fmt.Errorf("goroutine %d: Get gave Len %d Next %p", g, b.Len(), b.Next())
					return
				}
				b.Append(mark)
				if i%64 == 0 {
					// Let another goroutine run while this one holds a buffer.
					runtime.Gosched()
				}
				if !bytes.Equal(b.Bytes(), mark) {
					errs <- fmt.Errorf("goroutine %d: buffer changed under its owner: %v", g, b.Bytes())
					return
				}
				b.Release()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	st := p.Stats()
	total := uint64(goroutines * iters)
	if st.InUse != 0 || st.Gets != total || st.Releases != total {
		t.Fatalf("Stats = %+v, want InUse 0, Gets and Releases %d", st, total)
	}
	if st.Allocated < 1 || st.Allocated > goroutines {
		t.Fatalf("Allocated = %d, want 1..%d", st.Allocated, goroutines)
	}
	if st.Peak > goroutines {
		t.Fatalf("Peak = %d, want <= %d", st.Peak, goroutines)
	}
	if counted, walked := pool.FreeListLen(p); counted != walked || int64(walked) != st.Allocated {
		t.Fatalf("free list: counted %d walked %d, want both %d", counted, walked, st.Allocated)
	}
}

func TestChainFromRoundTrip(t *testing.T) {
	const size = 512
	p := pool.NewBuffers(size)
	r := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, size - 1, size, size + 1, 3 * size, 64 << 10}
	for range 200 {
		sizes = append(sizes, r.IntN(20*size))
	}
	for _, n := range sizes {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		c := pool.ChainFrom(p, data)

		want := max(1, (n+size-1)/size)
		if got := chainCount(c); got != want {
			t.Fatalf("ChainFrom(%d bytes) gave %d buffers, want %d", n, got, want)
		}
		if c.ChainLen() != n {
			t.Fatalf("ChainFrom(%d bytes).ChainLen() = %d", n, c.ChainLen())
		}
		var got []byte
		for b := c; b != nil; b = b.Next() {
			if b.Next() != nil && b.Len() != size {
				t.Fatalf("ChainFrom(%d bytes): inner buffer holds %d, want %d", n, b.Len(), size)
			}
			got = append(got, b.Bytes()...)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("ChainFrom(%d bytes) did not round-trip", n)
		}
		c.Release()

		// The same bytes in pieces (empty ones among them) make the same
		// chain.
		var pieces [][]byte
		for rest := data; len(rest) > 0; {
			k := min(len(rest), r.IntN(2*size))
			pieces = append(pieces, rest[:k])
			rest = rest[k:]
		}
		g := pool.ChainFrom(p, pieces...)
		got = got[:0]
		for b := g; b != nil; b = b.Next() {
			if b.Next() != nil && b.Len() != size {
				t.Fatalf("ChainFrom(%d bytes in %d pieces): inner buffer holds %d", n, len(pieces), b.Len())
			}
			got = append(got, b.Bytes()...)
		}
		if chainCount(g) != want || !bytes.Equal(got, data) {
			t.Fatalf("ChainFrom(%d bytes in %d pieces): %d buffers, equal %t", n, len(pieces), chainCount(g), bytes.Equal(got, data))
		}
		g.Release()
	}
	if st := p.Stats(); st.InUse != 0 {
		t.Fatalf("InUse = %d, want 0", st.InUse)
	}
}

func TestBufferGetReleaseAllocatesNothing(t *testing.T) {
	if pool.LeakChecking() {
		t.Skip("-tags bufleak records the taker's stack at every Get, which allocates by design")
	}
	p := pool.NewBuffers(0)
	p.GetChain(4 * p.Size()).Release() // warm up: four buffers on the free lists

	if n := testing.AllocsPerRun(1000, func() { p.Get().Release() }); n != 0 {
		t.Errorf("Get/Release pair: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { p.GetChain(4 * p.Size()).Release() }); n != 0 {
		t.Errorf("GetChain/Release of 4: %v allocations, want 0", n)
	}
	data := make([]byte, 3*p.Size())
	if n := testing.AllocsPerRun(1000, func() { pool.ChainFrom(p, data).Release() }); n != 0 {
		t.Errorf("ChainFrom/Release of 3 buffers: %v allocations, want 0", n)
	}
}
