package sock_test

import (
	"bytes"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/seq"
)

// The test pattern: byte k of a connection's stream is k % 251 (a prime,
// so it never lines up with buffer sizes). patternTable holds enough of it
// that any run of up to 64 KiB starting at any phase is one slice.
const patternMod = 251

var patternTable = func() []byte {
	b := make([]byte, patternMod+64<<10)
	for i := range b {
		b[i] = byte(i % patternMod)
	}
	return b
}()

// pattern returns the n bytes of the stream starting at offset off.
func pattern(off int64, n int) []byte {
	p := int(off % patternMod)
	return patternTable[p : p+n]
}

// patternChecker is a server handler that checks each buffer it is handed
// continues the pattern where the previous one ended; with echo set it
// also writes each buffer back and checks that write completions come in
// stamp order.
type patternChecker struct {
	reads       int
	echo        bool
	corruptions atomic.Int64
	bytes       atomic.Int64
	ops         atomic.Int64 // reads and writes completed
	misordered  atomic.Int64 // write completions out of stamp order
	chains      atomic.Int64 // reads handed over as a chain of buffers
	mu          sync.Mutex
	state       map[*reactor.Conn]*streamState
}

type streamState struct {
	off       int64
	lastWrite seq.Number
	anyWrite  bool
}

func (h *patternChecker) OnOpen(c *reactor.Conn) {
	h.mu.Lock()
	h.state[c] = &streamState{}
	h.mu.Unlock()
	for i := 0; i < h.reads; i++ {
		c.Read()
	}
}

func (h *patternChecker) stream(c *reactor.Conn) *streamState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state[c]
}

func (h *patternChecker) OnRead(c *reactor.Conn, b *reactor.Buffer, err error) {
	if err != nil {
		c.Close()
		return
	}
	h.ops.Add(1)
	st := h.stream(c)
	if b.Next() != nil {
		h.chains.Add(1)
	}
	for x := b; x != nil; x = x.Next() {
		p := x.Bytes()
		if !bytes.Equal(p, pattern(st.off, len(p))) {
			h.corruptions.Add(1)
		}
		st.off += int64(len(p))
		h.bytes.Add(int64(len(p)))
	}
	if h.echo {
		c.WriteBuffer(b)
	} else {
		b.Release()
	}
	c.Read()
}

func (h *patternChecker) OnWrite(c *reactor.Conn, s seq.Number, n int, err error) {
	if err != nil {
		return
	}
	h.ops.Add(1)
	st := h.stream(c)
	if st.anyWrite && s != st.lastWrite.Next() {
		h.misordered.Add(1)
	}
	st.lastWrite, st.anyWrite = s, true
}

func (h *patternChecker) OnClose(c *reactor.Conn, err error) {}

// streamPattern writes total bytes of the pattern to c in random-sized
// writes (1 B to 64 KiB).
func streamPattern(c net.Conn, total int64, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 11))
	for off := int64(0); off < total; {
		n := min(int64(1+rng.IntN(64<<10)), total-off)
		if _, err := c.Write(pattern(off, int(n))); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// TestBytePatternManyReadsSharedPoller: 4 reads outstanding per
// connection, 4 I/O threads on one shared poller, so a connection's reads
// complete on different threads and out of order; every buffer handed to
// OnRead must continue the pattern from the one before. 1 GiB in all.
func TestBytePatternManyReadsSharedPoller(t *testing.T) {
	total := int64(1 << 30)
	if testing.Short() {
		total = 64 << 20
	}
	const conns = 4
	e := testutil.Engine(t, reactor.Config{IOThreads: 4, SharedPoller: true, MaxReads: 4})
	h := &patternChecker{reads: 4, state: map[*reactor.Conn]*streamState{}}
	ln, err := e.Listen("127.0.0.1:0", h, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		c := dial(t, ln.Addr().String())
		c.SetDeadline(time.Now().Add(5 * time.Minute))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			if err := streamPattern(c, total/conns, uint64(i)); err != nil {
				errs <- err
				return
			}
			c.CloseWrite()
			_, err := io.Copy(io.Discard, c) // until the server closes at EOF
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := h.corruptions.Load(); n != 0 {
		t.Fatalf("%d buffers broke the pattern", n)
	}
	if got := h.bytes.Load(); got != total {
		t.Fatalf("server validated %d bytes, want %d", got, total)
	}
	if n := e.Stats().ReadsReordered; n == 0 {
		t.Fatal("no read completion ever arrived out of order: the reordering path did not run")
	} else {
		t.Logf("%d GiB validated; %d read completions arrived out of order and were reordered", total>>30, n)
	}
}

// TestBytePatternReadChain: with ReadChain a fast stream is read with
// readv into chains of buffers; the chains must carry the pattern whole.
func TestBytePatternReadChain(t *testing.T) {
	total := int64(256 << 20)
	if testing.Short() {
		total = 32 << 20
	}
	e := testutil.Engine(t, reactor.Config{IOThreads: 2, ReadChain: 4, BufferSize: 4096})
	h := &patternChecker{reads: 1, state: map[*reactor.Conn]*streamState{}}
	ln, err := e.Listen("127.0.0.1:0", h, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, ln.Addr().String())
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	if err := streamPattern(c, total, 3); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatal(err)
	}
	if n := h.corruptions.Load(); n != 0 {
		t.Fatalf("%d buffers broke the pattern", n)
	}
	if got := h.bytes.Load(); got != total {
		t.Fatalf("server validated %d bytes, want %d", got, total)
	}
	if h.chains.Load() == 0 {
		t.Fatalf("no read was handed over as a chain (backend %v): neither readv nor a bundle receive ran", e.Backend())
	}
}

// TestSequenceWrapThroughSockets: every connection's read and write
// stamps start 1,000 below the top of the range, and at least a million
// reads and writes go through real sockets across the wrap: the echoed
// stream must stay whole and in order, write completions in stamp order,
// and nothing may stall.
func TestSequenceWrapThroughSockets(t *testing.T) {
	ops := int64(1_000_000)
	if testing.Short() || runtime.GOOS == "windows" {
		// Under Wine each operation costs wineserver round trips: a
		// million take two minutes. 100,000 still cross the wrap.
		ops = 100_000
	}
	const conns = 4
	e := testutil.Engine(t, reactor.Config{
		IOThreads: 4, SharedPoller: true, MaxReads: 4, BufferSize: 512,
		SeqStart: math.MaxUint32 - 1000,
	})
	h := &patternChecker{reads: 4, echo: true, state: map[*reactor.Conn]*streamState{}}
	ln, err := e.Listen("127.0.0.1:0", h, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*conns)
	var stop atomic.Bool
	for i := 0; i < conns; i++ {
		c := dial(t, ln.Addr().String())
		c.SetDeadline(time.Now().Add(5 * time.Minute))
		var sent atomic.Int64
		wg.Add(2)
		go func() { // writer: the pattern in small random pieces until enough ops
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 5))
			var off int64
			for !stop.Load() {
				n := 1 + rng.IntN(2048)
				if _, err := c.Write(pattern(off, n)); err != nil {
					errs <- err
					return
				}
				off += int64(n)
				sent.Store(off)
				if h.ops.Load() >= ops {
					stop.Store(true)
				}
			}
			c.CloseWrite()
		}()
		go func() { // reader: the echo must be the same pattern, whole
			defer wg.Done()
			defer c.Close()
			buf := make([]byte, 64<<10)
			var off int64
			for {
				n, err := c.Read(buf)
				if n > 0 && !bytes.Equal(buf[:n], pattern(off, n)) {
					errs <- errEchoCorrupt
					return
				}
				off += int64(n)
				if err == io.EOF {
					if off != sent.Load() {
						errs <- errEchoShort
					}
					return
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := h.ops.Load(); n < ops {
		t.Fatalf("%d reads and writes completed, want at least %d", n, ops)
	}
	if n := h.corruptions.Load(); n != 0 {
		t.Fatalf("%d reads broke the pattern across the wrap", n)
	}
	if n := h.misordered.Load(); n != 0 {
		t.Fatalf("%d write completions out of stamp order across the wrap", n)
	}
}

var (
	errEchoCorrupt = &echoError{"the echo broke the pattern"}
	errEchoShort   = &echoError{"the echo ended before everything sent came back"}
)

type echoError struct{ s string }

func (e *echoError) Error() string { return e.s }
