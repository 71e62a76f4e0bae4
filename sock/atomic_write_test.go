package sock_test

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/seq"
)

// writeFuncHandler is a funcHandler that also wants write completions.
type writeFuncHandler struct {
	funcHandler
	onWrite func(c *reactor.Conn, s seq.Number, n int, err error)
}

func (h *writeFuncHandler) OnWrite(c *reactor.Conn, s seq.Number, n int, err error) {
	h.onWrite(c, s, n, err)
}

// A frame of TestConcurrentWritersFramesStayWhole, big-endian:
//
//	0   uint32  length of the whole frame, header included
//	4   uint32  CRC-32 (IEEE) of the payload
//	8   uint16  writer id
//	10  uint32  the writer's frame counter, from 0
//	14  payload, 1 B to framePayloadMax
const (
	frameHeader     = 14
	framePayloadMax = 256 << 10
	frameWriters    = 64
	frameBufsMax    = 2000 // buffers of one Write: more than IOV_MAX (1024)
	frameWindow     = 4    // frames a writer has in flight at most
)

// framesSeqStart puts the connection's write stamps just below the wrap,
// so completions are checked across it.
const framesSeqStart = seq.Number(math.MaxUint32 - 99)

// TestConcurrentWritersFramesStayWhole: 64 goroutines write framed
// messages on one connection at once, each frame one Write of up to 2,000
// buffers (some empty, many frames above IOV_MAX). The peer receives every
// frame whole (length and CRC right), each writer's frames in its order;
// the handler gets one completion per write, stamps consecutive, each
// with the frame's byte count.
func TestConcurrentWritersFramesStayWhole(t *testing.T) {
	for _, mode := range []struct {
		name string
		cfg  reactor.Config
	}{
		{"PerThreadPollers", reactor.Config{IOThreads: 2}},
		{"SharedPoller", reactor.Config{IOThreads: 4, SharedPoller: true}},
	} {
		t.Run(mode.name, func(t *testing.T) { testFramesStayWhole(t, mode.cfg, nil, 110) })
	}
}

// TestConcurrentWritersFramesStayWholeThroughTLS: the same through the
// TLS filter, read by Go's crypto/tls client. Each Write becomes records
// that leave as one socket write, so the frames stay whole in the
// plaintext, and write completions keep their stamps and order.
func TestConcurrentWritersFramesStayWholeThroughTLS(t *testing.T) {
	p := newTLSPair(t)
	testFramesStayWhole(t, reactor.Config{IOThreads: 2}, &p, 30)
}

func testFramesStayWhole(t *testing.T, cfg reactor.Config, tp *tlsPair, frames int) {
	// About 21 KiB a frame on average: 64×110 frames are some 150 MB.
	if testing.Short() {
		frames = max(frames/10, 3)
	}
	const (
		limit = 3 * time.Minute  // the whole exchange
		stall = 30 * time.Second // the client waiting for one frame
	)

	cfg.SeqStart = framesSeqStart
	e := testutil.Engine(t, cfg)
	var faults testutil.Faults
	slots := make([]chan struct{}, frameWriters)
	for i := range slots {
		slots[i] = make(chan struct{}, frameWindow)
	}
	ledger := newWriteLedger(&faults, slots)
	opened := make(chan *reactor.Conn, 1)
	closed := make(chan error, 1)
	// OnWrite calls of one connection never overlap and each happens
	// before the next (the engine's promise, which the race detector
	// checks here), so next and completions need no lock.
	next, completions := framesSeqStart, 0
	ln, err := e.Listen("127.0.0.1:0", &writeFuncHandler{
		funcHandler: funcHandler{
			onOpen:  func(c *reactor.Conn) { opened <- c },
			onClose: func(c *reactor.Conn, err error) { closed <- err },
		},
		onWrite: func(c *reactor.Conn, s seq.Number, n int, err error) {
			if s != next {
				faults.Add("completion stamped %d after %d: not the next stamp", s, next-1)
			}
			next = s.Next()
			completions++
			ledger.completed(s, n, err)
		},
	}, listenOpts(tp))
	if err != nil {
		t.Fatal(err)
	}
	var client net.Conn = dial(t, ln.Addr().String())
	if tp != nil {
		tc := tls.Client(client, tp.client)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		client = tc
	}
	defer client.Close()
	srv := wait(t, opened, "OnOpen")

	// When the client stalls or fails, or past the limit, everything is
	// torn down so that every wait below ends: writers stop, queued writes
	// fail, the reader gets an error.
	stop := make(chan struct{})
	var tearOnce sync.Once
	var tornDown string
	tearDown := func(why string) {
		tearOnce.Do(func() {
			tornDown = why
			close(stop)
			srv.Abort()
			client.Close()
		})
	}
	watchdog := time.AfterFunc(limit, func() { tearDown(fmt.Sprintf("not done within %v", limit)) })
	defer watchdog.Stop()

	reports := make(chan frameReport, 1)
	go func() {
		rep := readFrames(client, frameWriters, stall)
		if rep.err != nil {
			tearDown("the client failed")
		}
		reports <- rep
	}()

	source := testutil.RandomBytes(4<<20, 77)
	var writes, sent atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range frameWriters {
		wg.Go(func() {
			m := frameMaker{id: uint16(w), rng: rand.New(rand.NewPCG(uint64(w), 0x5eed)), source: source}
			for i := range frames {
				bufs, size := m.frame()
				select {
				case slots[w] <- struct{}{}:
				case <-stop:
					return
				}
				s, err := srv.Write(bufs...)
				if err != nil {
					faults.Add("writer %d, frame %d: Write: %v", w, i, err)
					return
				}
				writes.Add(1)
				sent.Add(int64(size))
				ledger.written(s, w, size)
			}
		})
	}
	wg.Wait()
	if err := srv.Close(); err != nil {
		t.Errorf("Close after the writers: %v", err)
	}
	rep := <-reports // bounded by the stall timeout
	closeErr := wait(t, closed, "OnClose")
	watchdog.Stop()
	tearOnce.Do(func() {}) // from here tornDown is settled
	t.Logf("%d frames, %d bytes in %v", rep.frames, rep.bytes, time.Since(start).Round(time.Millisecond))

	if tornDown != "" {
		t.Errorf("torn down: %s", tornDown)
	}
	if closeErr != nil {
		t.Errorf("OnClose after a graceful Close: %v", closeErr)
	}
	if rep.err != nil {
		t.Errorf("client: %v", rep.err)
	}
	if rep.bad != 0 {
		t.Errorf("%d bad frames; the first: %s", rep.bad, strings.Join(rep.notes, "; "))
	}
	if want := frameWriters * frames; rep.frames != want {
		t.Errorf("%d whole frames arrived, want %d", rep.frames, want)
	}
	if rep.bytes != sent.Load() {
		t.Errorf("client read %d bytes, writers wrote %d", rep.bytes, sent.Load())
	}
	if int64(completions) != writes.Load() {
		t.Errorf("%d write completions for %d writes", completions, writes.Load())
	}
	if n := ledger.unsettled(); n != 0 {
		t.Errorf("%d writes without both a stamp and a completion", n)
	}
	faults.Report(t)
}

func listenOpts(tp *tlsPair) reactor.ListenOptions {
	if tp == nil {
		return reactor.ListenOptions{}
	}
	return reactor.ListenOptions{ConnOptions: reactor.ConnOptions{TLS: tp.server}}
}

// frameMaker builds one writer's frames. Payload pieces are cut from a
// shared random source at random offsets, so the buffers of a frame are not
// adjacent in memory: a writev given a wrong base or length would send
// other bytes, which the CRC catches. Nothing writes to the source.
type frameMaker struct {
	id     uint16
	rng    *rand.Rand
	source []byte
	next   uint32
}

// frame returns the next frame as the buffers of one Write, and its size.
func (m *frameMaker) frame() ([][]byte, int) {
	size := logUniform(m.rng, framePayloadMax)
	var lens []int
	if m.next == 0 {
		// Every writer's first frame: 2,000 buffers, none empty, so that
		// frames above IOV_MAX occur whatever the random draws.
		size = max(size, frameBufsMax+m.rng.IntN(frameBufsMax))
		lens = splitLengths(m.rng, size, frameBufsMax, true)
	} else {
		parts := 1 + m.rng.IntN(8)
		if m.rng.IntN(2) == 0 {
			parts = 1 + m.rng.IntN(frameBufsMax)
		}
		lens = splitLengths(m.rng, size, parts, false) // empty pieces allowed
	}
	hdrLens := splitLengths(m.rng, frameHeader, 1+m.rng.IntN(3), false)
	bufs := make([][]byte, len(hdrLens), len(hdrLens)+len(lens)) // header pieces first

	var crc uint32
	for _, l := range lens {
		off := m.rng.IntN(len(m.source) - l + 1)
		p := m.source[off : off+l]
		crc = crc32.Update(crc, crc32.IEEETable, p)
		bufs = append(bufs, p)
	}
	hdr := make([]byte, frameHeader)
	binary.BigEndian.PutUint32(hdr[0:], uint32(frameHeader+size))
	binary.BigEndian.PutUint32(hdr[4:], crc)
	binary.BigEndian.PutUint16(hdr[8:], m.id)
	binary.BigEndian.PutUint32(hdr[10:], m.next)
	m.next++
	for i, l := range hdrLens {
		bufs[i], hdr = hdr[:l], hdr[l:]
	}
	return bufs, frameHeader + size
}

// logUniform returns a size from 1 to hi whose logarithm is uniform:
// most are small, a few are large.
func logUniform(rng *rand.Rand, hi int) int {
	return min(hi, int(math.Exp(rng.Float64()*math.Log(float64(hi)+1))))
}

// splitLengths cuts total into parts lengths at random points; with
// nonEmpty each is at least 1 (total must be at least parts).
func splitLengths(rng *rand.Rand, total, parts int, nonEmpty bool) []int {
	free := total
	if nonEmpty {
		free -= parts
	}
	cuts := make([]int, parts+1)
	for i := 1; i < parts; i++ {
		cuts[i] = rng.IntN(free + 1)
	}
	cuts[parts] = free
	slices.Sort(cuts[1:parts])
	lens := make([]int, parts)
	for i := range lens {
		lens[i] = cuts[i+1] - cuts[i]
		if nonEmpty {
			lens[i]++
		}
	}
	return lens
}

// writeLedger pairs each write's stamp, as Write returned it, with its
// completion. The completion may run on an I/O thread before Write has
// returned to the writer, so whichever of the two comes second settles
// the write: checks its byte count and frees the writer's window slot.
type writeLedger struct {
	faults *testutil.Faults
	slots  []chan struct{}
	mu     sync.Mutex
	m      map[seq.Number]ledgerEntry
}

type ledgerEntry struct {
	stamped bool // Write returned the stamp: writer and size are set
	writer  int
	size    int
	n       int // the completion's byte count and error, when not stamped
	err     error
}

func newWriteLedger(f *testutil.Faults, slots []chan struct{}) *writeLedger {
	return &writeLedger{faults: f, slots: slots, m: make(map[seq.Number]ledgerEntry)}
}

// written records the stamp Write returned for writer's frame of size bytes.
func (l *writeLedger) written(s seq.Number, writer, size int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.m[s]
	switch {
	case !ok:
		l.m[s] = ledgerEntry{stamped: true, writer: writer, size: size}
	case d.stamped:
		l.faults.Add("stamp %d returned by two writes", s)
	default:
		delete(l.m, s)
		l.settle(s, writer, size, d.n, d.err)
	}
}

// completed records OnWrite(s, n, err).
func (l *writeLedger) completed(s seq.Number, n int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.m[s]
	switch {
	case !ok:
		l.m[s] = ledgerEntry{n: n, err: err}
	case !d.stamped:
		l.faults.Add("two completions for stamp %d", s)
	default:
		delete(l.m, s)
		l.settle(s, d.writer, d.size, n, err)
	}
}

// settle checks one write; the writer's slot was taken before its Write,
// so freeing it never blocks.
func (l *writeLedger) settle(s seq.Number, writer, size, n int, err error) {
	if err != nil || n != size {
		l.faults.Add("write %d (writer %d) completed with %d bytes, error %v; want %d, nil", s, writer, n, err, size)
	}
	<-l.slots[writer]
}

// unsettled counts writes seen from one side only.
func (l *writeLedger) unsettled() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// frameReport is what the client saw.
type frameReport struct {
	frames int // whole frames, in their writer's order
	bad    int
	bytes  int64
	notes  []string // the first few bad frames
	err    error    // a read error other than EOF at a frame boundary
}

func (r *frameReport) badFrame(format string, args ...any) {
	r.bad++
	if len(r.notes) < 5 {
		r.notes = append(r.notes, fmt.Sprintf(format, args...))
	}
}

// readFrames parses frames from c until EOF and checks each. Waiting
// longer than stall for one frame is an error.
func readFrames(c net.Conn, writers int, stall time.Duration) frameReport {
	var rep frameReport
	br := bufio.NewReaderSize(c, 1<<20)
	want := make([]uint32, writers) // each writer's next counter
	payload := make([]byte, framePayloadMax)
	var hdr [frameHeader]byte
	for {
		c.SetReadDeadline(time.Now().Add(stall))
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err != io.EOF {
				rep.err = fmt.Errorf("after %d bytes, reading a header: %w", rep.bytes, err)
			}
			return rep
		}
		size := int(binary.BigEndian.Uint32(hdr[0:]))
		sum := binary.BigEndian.Uint32(hdr[4:])
		id := binary.BigEndian.Uint16(hdr[8:])
		counter := binary.BigEndian.Uint32(hdr[10:])
		if size < frameHeader+1 || size > frameHeader+framePayloadMax || int(id) >= writers {
			// The stream lost its framing: nothing after this parses.
			// Drain it so that the server's Close can finish.
			rep.badFrame("at byte %d, header % x: not a frame; the rest is unreadable", rep.bytes, hdr)
			n, err := io.Copy(io.Discard, br)
			rep.bytes += frameHeader + n
			rep.err = err
			return rep
		}
		p := payload[:size-frameHeader]
		if _, err := io.ReadFull(br, p); err != nil {
			rep.err = fmt.Errorf("after %d bytes, frame of %d bytes cut short: %w", rep.bytes, size, err)
			return rep
		}
		at := rep.bytes
		rep.bytes += int64(size)
		switch {
		case crc32.ChecksumIEEE(p) != sum:
			rep.badFrame("at byte %d, writer %d frame %d (%d bytes): CRC differs", at, id, counter, size)
		case counter != want[id]:
			rep.badFrame("at byte %d, writer %d: frame %d, want %d", at, id, counter, want[id])
		default:
			rep.frames++
		}
		want[id] = counter + 1
	}
}
