package sock

// The TLS filter, on crypto/tls. crypto/tls reads and writes a net.Conn;
// here that is tlsPipe, which reads the bytes the socket delivered and
// collects the records crypto/tls makes.
//
// The handshake cannot be resumed step by step, so it runs on the
// engine's handshake pool, where crypto/tls may block in the pipe's Read
// until the I/O thread feeds it, its worker given back meanwhile
// (pool.Blocking.Park); its result comes back to the connection's
// delivery. After it, records are decrypted on the I/O
// thread: the pipe's Read then answers "would block" with a temporary
// net.Error when it runs dry, which crypto/tls keeps out of its sticky
// error state and treats as "try later", holding any partial record.
// Encryption runs on the writer's goroutine, under the chain's wmu, and
// everything one Write makes leaves as one socket write.

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ioreactor/reactor/internal/lock"
	"github.com/ioreactor/reactor/pool"
)

// DefaultHandshakeTimeout bounds a TLS handshake when ConnOptions does
// not say otherwise.
const DefaultHandshakeTimeout = 10 * time.Second

// ErrHandshakeTimeout fails a TLS handshake that did not finish in time.
var ErrHandshakeTimeout = errors.New("sock: TLS handshake timed out")

// The TLS filter's states: handshaking until its result is delivered,
// then open; done once the connection closes.
const (
	tlsHandshaking uint32 = iota
	tlsOpen
	tlsDone
)

type tlsFilter struct {
	cfg     *tls.Config
	server  bool
	timeout time.Duration
	state   atomic.Uint32
	pipe    tlsPipe
	conn    *tls.Conn
	outv    [][]byte // flushIn's slices, reused (guarded by the chain's wmu)
	// waitHello: a server's handshake waits for the first record of the
	// ClientHello before it starts (touched only inside delivery).
	waitHello bool
	// timedOut: the handshake's timer fired, before the pipe closed. The
	// timeout is the loop's timer, not a context: a context with a
	// deadline makes crypto/tls start a goroutine per handshake to watch
	// it, and a stalled peer would cost two.
	timedOut atomic.Bool
}

// testHookHandshake, when set by a test, runs on the handshake's worker
// before the handshake: a test holds the worker with it.
var testHookHandshake atomic.Pointer[func()]

// handshakeBacklog is how many bytes may wait in the pipe before the
// handshake is done; past it the socket's reads wait (Layer.HoldReads)
// until the handshake takes some, or ends. A peer sends its flights
// (crypto/tls takes handshake messages of up to 64 KiB) and, once its
// Finished is out, may go straight on with its data, which waits here
// until the server's result reaches the I/O thread; a peer that floods
// a handshake queued behind busy workers backs up in the kernel.
const handshakeBacklog = 256 << 10

func newTLSFilter(cfg *tls.Config, server bool, host string, timeout time.Duration) *tlsFilter {
	if !server && cfg.ServerName == "" && host != "" {
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	f := &tlsFilter{cfg: cfg, server: server, timeout: timeout}
	f.pipe.cond.L = &f.pipe.mu
	f.pipe.eager = true
	return f
}

// Open arms the handshake's timeout and starts the handshake on the
// handshake pool: a client's at once, a server's when the ClientHello is
// in.
func (f *tlsFilter) Open(l *Layer) {
	c := l.Conn()
	f.pipe.bufs = c.env.Buffers
	f.pipe.flush = func() { f.flushOob(l) }
	f.pipe.holdReads, f.pipe.resume = l.HoldReads, l.ResumeReads
	f.pipe.remote = net.TCPAddrFromAddrPort(c.remote)
	f.pipe.local = net.TCPAddrFromAddrPort(c.LocalAddr())
	if f.server {
		f.conn = tls.Server(&f.pipe, f.cfg)
	} else {
		f.conn = tls.Client(&f.pipe, f.cfg)
	}
	l.ArmTimer(f.timeout)
	if f.server {
		// The client speaks first: until its ClientHello's first record
		// is in, a peer that connects and says nothing, or sends part of
		// it, costs no goroutine (Read starts the handshake).
		f.waitHello = true
		return
	}
	f.start(l)
}

// start hands the handshake to the handshake pool. Delivery only.
func (f *tlsFilter) start(l *Layer) {
	f.waitHello = false
	c := l.Conn()
	hp, err := c.env.blockingPool(true)
	if err == nil {
		// While the handshake waits for the peer it holds no worker.
		f.pipe.park = hp.Park
		err = submitOn(c, true, f.handshake, func(_ *Conn, err error) { f.handshakeDone(l, err) })
	}
	if err != nil {
		c.env.Counters.TLSFailures.Add(1)
		l.Fail(fmt.Errorf("sock: TLS handshake not started: %w", err))
	}
}

// handshake runs on a handshake worker.
func (f *tlsFilter) handshake() error {
	if hook := testHookHandshake.Load(); hook != nil {
		(*hook)()
	}
	err := f.conn.Handshake()
	if err != nil && f.timedOut.Load() {
		err = f.timeoutError()
	}
	// From here on the pipe's writes wait for the chain's flushes, and
	// the last flight (or the alert of a failure) goes out now.
	f.pipe.mu.Lock()
	f.pipe.eager = false
	f.pipe.mu.Unlock()
	f.pipe.flush()
	return err
}

// handshakeDone runs inside delivery with the handshake's result.
func (f *tlsFilter) handshakeDone(l *Layer, err error) {
	c := l.Conn()
	if err == nil && f.timedOut.Load() {
		// The timer fired as the handshake finished: the pipe is closed.
		err = f.timeoutError()
	}
	if err != nil {
		f.state.Store(tlsDone)
		c.env.Counters.TLSFailures.Add(1)
		// The worker flushed crypto/tls's alert; it goes out before the
		// close, so the peer learns why.
		l.FailAfterFlush(fmt.Errorf("sock: TLS handshake with %v: %w", c.remote, err))
		return
	}
	if !f.state.CompareAndSwap(tlsHandshaking, tlsOpen) {
		return
	}
	l.StopTimer()
	c.env.Counters.TLSHandshakes.Add(1)
	f.pipe.mu.Lock()
	f.pipe.nonblock = true
	held := f.pipe.held
	f.pipe.held = false
	f.pipe.mu.Unlock()
	if held {
		defer l.ResumeReads() // after the drain below
	}
	l.PassOpen()
	// crypto/tls may already hold records read past the handshake.
	f.drain(l)
}

// ConnectionState is the TLS state of c's TLS filter (ok false when c
// has none, or its handshake is not done).
func ConnectionState(c *Conn) (tls.ConnectionState, bool) {
	ch := c.filters()
	if ch == nil {
		return tls.ConnectionState{}, false
	}
	for i := range ch.layers {
		if f, ok := ch.layers[i].f.(*tlsFilter); ok && f.state.Load() == tlsOpen {
			return f.conn.ConnectionState(), true
		}
	}
	return tls.ConnectionState{}, false
}

func (f *tlsFilter) Read(l *Layer, b *pool.Buffer) {
	f.pipe.feed(b)
	switch {
	case f.waitHello:
		if f.pipe.firstRecordIn() {
			f.start(l)
		}
	case f.state.Load() == tlsOpen:
		f.drain(l)
	}
}

func (f *tlsFilter) EOF(l *Layer) {
	f.pipe.feedEOF()
	switch {
	case f.waitHello:
		// crypto/tls reads what came and fails on the end of stream,
		// with the error and the count of any handshake cut short.
		f.start(l)
	case f.state.Load() == tlsOpen:
		f.drain(l)
	}
}

// Timer is the handshake's timeout. The connection closes now; a
// handshake that began fails at its next read or write (at once if it is
// parked), as the pipe is closed, and is counted when it reports; one that
// had not begun is counted here.
func (f *tlsFilter) Timer(l *Layer) {
	if f.state.Load() != tlsHandshaking || f.timedOut.Swap(true) {
		return
	}
	f.pipe.close()
	err := f.timeoutError()
	if f.waitHello {
		f.waitHello = false
		f.handshakeDone(l, err)
		return
	}
	// Not waiting for the handshake to report: it may be queued behind
	// busy workers, and the peer is not to hold its connection meanwhile.
	l.Fail(fmt.Errorf("sock: TLS handshake with %v: %w", l.Conn().remote, err))
}

func (f *tlsFilter) timeoutError() error {
	return fmt.Errorf("%w after %v", ErrHandshakeTimeout, f.timeout)
}

// drain decrypts what the pipe holds and passes the plaintext up, until
// the pipe runs dry, the peer's close_notify or EOF, or an error.
func (f *tlsFilter) drain(l *Layer) {
	for {
		b := l.Buffers().Get()
		n, err := f.conn.Read(b.Space())
		if n > 0 {
			b.Commit(n)
			l.PassRead(b)
		} else {
			b.Release()
		}
		if err == nil {
			continue
		}
		switch {
		case errors.Is(err, errWouldBlock):
		case err == io.EOF:
			l.PassEOF()
		default:
			// crypto/tls has made an alert (bad_record_mac, …): it goes
			// out before the close, as RFC 8446 §6.2 asks.
			f.flushOob(l)
			l.FailAfterFlush(fmt.Errorf("sock: TLS: %w", err))
			return
		}
		break
	}
	if f.pipe.pending() {
		// Reading can make records of its own (a KeyUpdate answer).
		f.flushOob(l)
	}
}

// Write encrypts one write; its records leave as one socket write.
// Called under the chain's wmu.
func (f *tlsFilter) Write(l *Layer, bufs [][]byte, owned *pool.Buffer) error {
	defer releaseChain(owned)
	if f.state.Load() != tlsOpen {
		return ErrNotConnected
	}
	err := f.encrypt(l, bufs)
	if ferr := f.flushIn(l); err == nil {
		err = ferr
	}
	return err
}

// encrypt hands crypto/tls the write's bytes, small slices gathered into
// one pooled buffer so that they make full records rather than one
// record each.
func (f *tlsFilter) encrypt(l *Layer, bufs [][]byte) error {
	if len(bufs) == 1 {
		_, err := f.conn.Write(bufs[0])
		return err
	}
	gather := l.Buffers().Get()
	defer gather.Release()
	for _, p := range bufs {
		for len(p) > 0 {
			if gather.Len() == 0 && len(p) >= gather.Cap() {
				if _, err := f.conn.Write(p); err != nil {
					return err
				}
				break
			}
			k := gather.Append(p)
			p = p[k:]
			if len(gather.Space()) == 0 {
				if _, err := f.conn.Write(gather.Bytes()); err != nil {
					return err
				}
				gather.Reset()
			}
		}
	}
	if gather.Len() > 0 {
		_, err := f.conn.Write(gather.Bytes())
		return err
	}
	return nil
}

// flushIn passes the records the pipe collected down as one write, from
// inside a pass (wmu held).
func (f *tlsFilter) flushIn(l *Layer) error {
	out := f.pipe.takeOut()
	if out == nil {
		return nil
	}
	// The slice headers are reused: wmu serialises the flushes, and the
	// layer below copies them before it returns.
	bs := f.outv[:0]
	for x := out; x != nil; x = x.Next() {
		bs = append(bs, x.Bytes())
	}
	f.outv = bs
	err := l.PassWrite(bs, out)
	clear(bs)
	return err
}

// flushOob sends records made outside any write (handshake flights,
// alerts, KeyUpdate answers), taking the chain's wmu so that they never
// land inside another write's run.
func (f *tlsFilter) flushOob(l *Layer) {
	ch := l.ch
	ch.wmu.Lock()
	defer ch.wmu.Unlock()
	if err := f.flushIn(l); err != nil && !errors.Is(err, ErrClosed) {
		l.Fail(err)
	}
}

// CloseWrite sends close_notify, then shuts the socket's sending side.
func (f *tlsFilter) CloseWrite(l *Layer) error {
	if f.state.Load() == tlsOpen {
		if err := f.conn.CloseWrite(); err != nil {
			return fmt.Errorf("sock: TLS: %w", err)
		}
		if err := f.flushIn(l); err != nil {
			return err
		}
	}
	return l.PassCloseWrite()
}

// Close sends close_notify when the handshake is done and ends one in
// progress, then passes the close down.
func (f *tlsFilter) Close(l *Layer) {
	if f.state.Load() == tlsOpen {
		if f.conn.CloseWrite() == nil {
			_ = f.flushIn(l) // the close goes on whether or not the alert could be queued
		}
	} else {
		f.pipe.close()
	}
	l.PassClose()
}

// Interrupt wakes a handshake waiting for bytes that will not come.
func (f *tlsFilter) Interrupt(*Layer) {
	if f.state.Load() != tlsOpen {
		f.pipe.close()
	}
}

// Closed releases what the pipe holds.
func (f *tlsFilter) Closed(*Layer, error) {
	f.state.Store(tlsDone)
	f.pipe.close()
}

// errWouldBlock is the pipe's "no bytes yet" after the handshake. It is a
// temporary net.Error: crypto/tls then returns it without making it the
// connection's permanent error.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "sock: TLS pipe has no bytes yet" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// tlsPipe is the net.Conn crypto/tls reads and writes. Inbound, it holds
// the buffers the socket delivered; outbound, the records crypto/tls
// made, in pooled buffers, until a flush passes them down.
type tlsPipe struct {
	mu    lock.Mutex[tlsPipeMu]
	cond  sync.Cond // signalled when bytes, EOF or close arrive
	in    fifo[*pool.Buffer]
	off   int // bytes of in's front already read
	inLen int // bytes in in not yet read
	eof   bool
	shut  bool // closed: Read and Write fail, buffers are released
	out   *pool.Buffer
	tail  *pool.Buffer
	bufs  *pool.Buffers
	flush func() // sends what the pipe collected (takes the chain's wmu)
	// eager: during the handshake, each write is sent at once (crypto/tls
	// writes a whole flight per call, then waits for the answer).
	eager, nonblock bool
	// held: handshakeBacklog bytes wait, and the socket's reads with
	// them (holdReads, under mu, so that no Read can resume them first),
	// until the handshake takes some; resume lets them go on.
	held              bool
	holdReads, resume func()
	// park gives the handshake's worker back while Read waits for the
	// peer (pool.Blocking.Park of the handshake pool, set before the
	// handshake starts).
	park          func(wait func())
	local, remote net.Addr
}

// tlsPipeMu is the lock class of tlsPipe.mu (internal/lock).
type tlsPipeMu struct{}

// feed takes the buffers the socket delivered.
func (p *tlsPipe) feed(b *pool.Buffer) {
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		releaseChain(b)
		return
	}
	for x := b; x != nil; {
		next := x.Next()
		x.SetNext(nil)
		p.inLen += x.Len()
		switch {
		case x.Len() == 0:
			x.Release()
		case !p.nonblock && p.packLocked(x):
			// Until the handshake is done bytes may wait here (for the
			// ClientHello's record to be whole, or for a worker): a peer
			// that sends them a few at a time must not hold a pooled
			// buffer for each few.
			x.Release()
		default:
			p.in.push(x)
		}
		x = next
	}
	if !p.nonblock && !p.held && p.inLen >= handshakeBacklog {
		p.held = true
		p.holdReads()
	}
	p.cond.Signal()
	p.mu.Unlock()
}

// packLocked appends x's bytes to the last buffer waiting, if they fit,
// and reports whether they did. Called with mu held.
func (p *tlsPipe) packLocked(x *pool.Buffer) bool {
	if p.in.empty() {
		return false
	}
	last := p.in.at(p.in.len() - 1)
	if len(last.Space()) < x.Len() {
		return false
	}
	last.Append(x.Bytes())
	return true
}

func (p *tlsPipe) feedEOF() {
	p.mu.Lock()
	p.eof = true
	p.cond.Signal()
	p.mu.Unlock()
}

// close fails the pipe's Read and Write from now on and releases its
// buffers. Safe from any goroutine, any number of times.
func (p *tlsPipe) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut {
		return
	}
	p.shut = true
	for !p.in.empty() {
		p.in.pop().Release()
	}
	p.off, p.inLen = 0, 0
	releaseChain(p.out)
	p.out, p.tail = nil, nil
	p.cond.Broadcast()
}

func (p *tlsPipe) Read(b []byte) (n int, err error) {
	p.mu.Lock()
	defer func() {
		resume := p.held && p.inLen < handshakeBacklog
		if resume {
			p.held = false
		}
		p.mu.Unlock()
		if resume {
			p.resume()
		}
	}()
	for p.in.empty() {
		switch {
		case p.shut:
			return 0, net.ErrClosed
		case p.eof:
			return 0, io.EOF
		case p.nonblock:
			return 0, errWouldBlock
		}
		// Only the handshake, on its worker, gets here (nonblock is set
		// after it). A peer that stalls, or never sends a byte, must not
		// keep a worker from the handshakes behind it.
		p.mu.Unlock()
		p.park(p.waitForBytes)
		p.mu.Lock()
	}
	for n < len(b) && !p.in.empty() {
		x := p.in.front()
		k := copy(b[n:], x.Bytes()[p.off:])
		n += k
		p.off += k
		p.inLen -= k
		if p.off == x.Len() {
			p.in.pop().Release()
			p.off = 0
		}
	}
	return n, nil
}

// firstRecordIn reports whether a server's handshake can start: the
// first record is in whole, or what came cannot begin a ClientHello's
// record (another record type, version or an impossible length), which
// crypto/tls refuses at once, with an alert.
func (p *tlsPipe) firstRecordIn() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	var hdr [recordHeaderLen]byte
	n, total := 0, 0
	for i := range p.in.len() {
		b := p.in.at(i).Bytes()
		if i == 0 {
			b = b[p.off:]
		}
		total += len(b)
		n += copy(hdr[n:], b)
	}
	switch {
	case n == 0:
		return false
	case hdr[0] != recordTypeHandshake, n > 1 && hdr[1] != 3:
		return true
	case n < recordHeaderLen:
		return false
	}
	length := int(binary.BigEndian.Uint16(hdr[3:]))
	return length > maxRecordLen || total >= recordHeaderLen+length
}

// The TLS record layer (RFC 8446 §5.1): a 5-byte header (type, version,
// length) and at most 2^14 + 2,048 bytes of body.
const (
	recordHeaderLen     = 5
	recordTypeHandshake = 22
	maxRecordLen        = 1<<14 + 2048
)

// waitForBytes waits, outside Read's lock, until Read has something to
// answer: bytes, end of stream, or the pipe's close.
func (p *tlsPipe) waitForBytes() {
	p.mu.Lock()
	for p.in.empty() && !p.shut && !p.eof && !p.nonblock {
		p.cond.Wait()
	}
	p.mu.Unlock()
}

func (p *tlsPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		return 0, net.ErrClosed
	}
	n := len(b)
	for len(b) > 0 {
		if p.tail == nil || len(p.tail.Space()) == 0 {
			x := p.bufs.Get()
			if p.tail == nil {
				p.out = x
			} else {
				p.tail.SetNext(x)
			}
			p.tail = x
		}
		b = b[p.tail.Append(b):]
	}
	eager := p.eager
	p.mu.Unlock()
	if eager {
		p.flush()
	}
	return n, nil
}

// takeOut hands over the records collected so far.
func (p *tlsPipe) takeOut() *pool.Buffer {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.out
	p.out, p.tail = nil, nil
	return out
}

func (p *tlsPipe) pending() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out != nil
}

// Close is net.Conn's; crypto/tls calls it only from tls.Conn.Close, which
// the filter does not use (its Close sends close_notify and passes on).
func (p *tlsPipe) Close() error {
	p.close()
	return nil
}

func (p *tlsPipe) LocalAddr() net.Addr              { return p.local }
func (p *tlsPipe) RemoteAddr() net.Addr             { return p.remote }
func (p *tlsPipe) SetDeadline(time.Time) error      { return nil }
func (p *tlsPipe) SetReadDeadline(time.Time) error  { return nil }
func (p *tlsPipe) SetWriteDeadline(time.Time) error { return nil }
