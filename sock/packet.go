package sock

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"runtime/debug"
	"slices"
	"sync/atomic"

	"github.com/ioreactor/reactor/internal/lock"
	"github.com/ioreactor/reactor/pool"
)

// Datagram sockets (UDP). docs/datagrams.md says what they promise and why
// they differ from stream connections:
//
//   - Reading is continuous. A datagram socket reads whenever the kernel
//     has datagrams and hands each to OnPacket, in the order the kernel
//     queued them, one callback at a time. There is no Read to issue:
//     datagrams are independent, and the kernel's own answer to a reader
//     that falls behind (it drops what its receive buffer cannot hold) is
//     UDP's. A handler that must stop taking datagrams calls PauseReads.
//   - A datagram is never delivered cut short. One larger than
//     PacketOptions.MaxDatagram is dropped and counted
//     (Counters.DatagramsTruncated), never passed on as if whole.
//   - WriteTo sends one datagram, gathered from any number of slices, from
//     the caller's goroutine at once. When the socket's send buffer is
//     full the datagram is copied into pooled buffers and queued, and the
//     queue goes out, in order, when the socket is writable again. A
//     datagram that would take the queue past the write limit is refused
//     whole with a *WriteLimitError. Sends made while the loop delivers a
//     batch (an echo's answers) leave together after it (Linux: one
//     sendmmsg).

// DefaultPacketWriteLimit is PacketOptions.WriteLimit when left 0.
const DefaultPacketWriteLimit = 4 << 20

// MaxDatagramSize is the largest UDP payload there is (65,535 less the
// 8-byte UDP header; over IPv4 the IP header takes 20 more).
const MaxDatagramSize = 65527

// packetBurst bounds the batched receive calls one readiness event
// performs before the socket's further reads wait behind the loop's other
// work (with packetBatch datagrams a call, 32 datagrams).
const packetBurst = 4

// packetErrorRun bounds the receive errors in a row, without the socket
// draining in between, that a socket survives: a broken socket fails every
// receive. A peer's ICMP errors (a port unreachable) never count: they
// come one per error the network sent.
const packetErrorRun = 64

// PacketHandler receives a datagram socket's datagrams. Its methods run on
// an I/O thread, one at a time per socket, and must not block.
type PacketHandler interface {
	// OnPacket delivers one datagram and the address it came from. b holds
	// the whole datagram (b.Len() may be 0: an empty datagram is a
	// datagram), as a chain when MaxDatagram is larger than a pooled
	// buffer. b belongs to the handler, which must Release it or give it
	// to WriteBufferTo.
	OnPacket(p *PacketConn, b *pool.Buffer, from netip.AddrPort)
	// OnClose is the last callback, exactly once per socket. err is nil
	// after Close, otherwise the cause (a *PanicError when a callback
	// panicked).
	OnClose(p *PacketConn, err error)
}

// PacketOptions tunes a datagram socket.
type PacketOptions struct {
	// MaxDatagram is the largest datagram the socket receives whole, up to
	// MaxDatagramSize; larger ones are dropped and counted. 0 means one
	// pooled buffer (16 KiB by default, more than any datagram that
	// crosses an Ethernet path unfragmented). Each datagram read takes
	// ceil(MaxDatagram / buffer size) pooled buffers while the read is in
	// progress; the ones the datagram did not fill go back at once.
	MaxDatagram int
	// WriteLimit bounds the bytes queued while the socket's send buffer is
	// full; 0 means DefaultPacketWriteLimit.
	WriteLimit int64
	// ReusePort sets SO_REUSEPORT (not on Windows).
	ReusePort bool
	// SendBuffer and ReceiveBuffer set SO_SNDBUF and SO_RCVBUF when > 0.
	SendBuffer, ReceiveBuffer int
}

// ErrDatagramTooLarge is matched (errors.Is) by WriteTo's error for a
// datagram larger than MaxDatagramSize.
var ErrDatagramTooLarge = errors.New("sock: datagram larger than UDP allows")

// ErrAddressFamily is returned by WriteTo for an IPv6 destination on an
// IPv4 socket.
var ErrAddressFamily = errors.New("sock: destination's address family does not match the socket's")

// ErrPacketConnected is matched by WriteTo's error for a destination other
// than the one a DialPacket socket is connected to; ErrPacketNotConnected
// is Write's on a socket that is not connected (use WriteTo).
var (
	ErrPacketConnected    = errors.New("sock: the datagram socket is connected to another address")
	ErrPacketNotConnected = errors.New("sock: the datagram socket is not connected: use WriteTo")
)

// PacketConn is a datagram (UDP) socket, bound by ListenPacket.
type PacketConn struct {
	reg    pool.Registration
	fd     sysfd
	loop   *pool.Loop
	env    *Env
	h      PacketHandler
	life   lifetime
	addr   netip.AddrPort
	remote netip.AddrPort // DialPacket's peer; zero for ListenPacket
	v6     bool           // the socket is AF_INET6: IPv4 destinations go as mapped addresses
	done   chan struct{}
	// reason is why the socket closed: nil after Close.
	reason atomic.Pointer[error]
	ctx    atomic.Pointer[ctxBox]

	// rmu serialises reading and delivery: in shared mode two threads may
	// take events for one socket.
	rmu      lock.Mutex[packetRmu]
	readable bool        // the last edge said readable (Linux), under rmu
	paused   atomic.Bool // PauseReads: atomic, since OnPacket runs under rmu and may call it
	chain    int         // pooled buffers per datagram read
	rd       *packetReader

	// wmu orders datagrams: an immediate send and the queue never pass
	// each other.
	wmu     lock.Mutex[packetWmu]
	wq      []packetOut // waiting for room in the send buffer, oldest first
	wqBytes int64
	limit   int64
	pw      packetWriter // the platform's send state, under wmu
	// While the loop delivers a batch, sends are gathered here and go out
	// together after it (Linux: one sendmmsg), instead of a system call
	// each: an echo answers a batch of datagrams with a batch.
	gathering   bool
	gather      []packetOut
	gatherBytes int64
}

// packetRmu and packetWmu are the lock classes of PacketConn.rmu and
// PacketConn.wmu (internal/lock).
type (
	packetRmu struct{}
	packetWmu struct{}
)

// packetOut is a queued datagram: its bytes, in pooled buffers, and where
// it goes.
type packetOut struct {
	b  *pool.Buffer
	n  int
	to netip.AddrPort
}

func (o *PacketOptions) check() (maxDatagram int, err error) {
	if o.MaxDatagram < 0 || o.MaxDatagram > MaxDatagramSize {
		return 0, fmt.Errorf("sock: MaxDatagram %d is outside 0 to %d", o.MaxDatagram, MaxDatagramSize)
	}
	if o.WriteLimit < 0 {
		return 0, fmt.Errorf("sock: negative WriteLimit %d", o.WriteLimit)
	}
	return o.MaxDatagram, nil
}

// ListenPacket binds a UDP socket to addr ("127.0.0.1:0", "[::1]:5353")
// and starts reading: each datagram goes to h.OnPacket.
func ListenPacket(env *Env, addr string, h PacketHandler, o PacketOptions) (*PacketConn, error) {
	a, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	maxDatagram, err := o.check()
	if err != nil {
		return nil, err
	}
	p := newPacketConn(env, h, o, a, maxDatagram)
	if err := p.open(a, o); err != nil {
		return nil, err
	}
	return p, nil
}

// DialPacket makes a UDP socket connected to addr, bound to an ephemeral
// port: it receives only what addr sends, sends to it with Write (and
// WriteTo addr), and the kernel looks its route up once, not per
// datagram. Errors the network reports about addr (ICMP port unreachable)
// come back on the socket; they are counted in DatagramErrors and reading
// goes on.
func DialPacket(env *Env, addr string, h PacketHandler, o PacketOptions) (*PacketConn, error) {
	r, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	if r.Addr().IsUnspecified() || r.Port() == 0 {
		return nil, fmt.Errorf("sock: DialPacket %q: needs a host and a port", addr)
	}
	maxDatagram, err := o.check()
	if err != nil {
		return nil, err
	}
	// An IPv4-mapped address is dialled as the IPv4 address it maps.
	r = netip.AddrPortFrom(r.Addr().Unmap(), r.Port())
	local := netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	if !r.Addr().Is4() {
		local = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	}
	p := newPacketConn(env, h, o, local, maxDatagram)
	p.remote = r
	if err := p.open(local, o); err != nil {
		return nil, &DialError{Addr: addr, Err: err}
	}
	return p, nil
}

func newPacketConn(env *Env, h PacketHandler, o PacketOptions, local netip.AddrPort, maxDatagram int) *PacketConn {
	return &PacketConn{env: env, h: h, done: make(chan struct{}), v6: !local.Addr().Is4(),
		limit: cmp.Or(o.WriteLimit, DefaultPacketWriteLimit), chain: chainFor(maxDatagram, env.Buffers.Size())}
}

// sendAddr is the address a datagram to to is sent with: none on a
// connected socket (WriteTo has checked that to is its peer), so that the
// kernel uses the route it cached at connect.
func (p *PacketConn) sendAddr(to netip.AddrPort) netip.AddrPort {
	if p.remote.IsValid() {
		return netip.AddrPort{}
	}
	return to
}

// RemoteAddr is the address a socket made by DialPacket is connected to;
// the zero AddrPort for one made by ListenPacket.
func (p *PacketConn) RemoteAddr() netip.AddrPort { return p.remote }

// Write sends one datagram, the concatenation of bufs, to the address the
// socket is connected to (DialPacket): WriteTo(RemoteAddr(), bufs...).
func (p *PacketConn) Write(bufs ...[]byte) error {
	if !p.remote.IsValid() {
		return ErrPacketNotConnected
	}
	return p.WriteTo(p.remote, bufs...)
}

// WriteBuffer is WriteBufferTo(RemoteAddr(), b) for a connected socket.
func (p *PacketConn) WriteBuffer(b *pool.Buffer) error {
	if !p.remote.IsValid() {
		b.Release()
		return ErrPacketNotConnected
	}
	return p.WriteBufferTo(p.remote, b)
}

// checkDest refuses a destination the socket cannot send to: an IPv6 one
// from an IPv4 socket, or another than the one a connected socket is
// connected to.
func (p *PacketConn) checkDest(to netip.AddrPort) error {
	if p.remote.IsValid() && netip.AddrPortFrom(to.Addr().Unmap(), to.Port()) != p.remote {
		return fmt.Errorf("%w: to %v, connected to %v", ErrPacketConnected, to, p.remote)
	}
	if !p.v6 && !to.Addr().Unmap().Is4() {
		return ErrAddressFamily
	}
	return nil
}

// SetContext attaches a value of the user's to the socket.
func (p *PacketConn) SetContext(v any) { p.ctx.Store(&ctxBox{v}) }

// Context returns the value given to SetContext, or nil.
func (p *PacketConn) Context() any {
	if b := p.ctx.Load(); b != nil {
		return b.v
	}
	return nil
}

// LocalAddr is the address the socket is bound to (with the real port
// when 0 was asked for).
func (p *PacketConn) LocalAddr() netip.AddrPort { return p.addr }

// Done is closed after OnClose has returned and the descriptor is closed.
func (p *PacketConn) Done() <-chan struct{} { return p.done }

// Closed reports whether Close was called or the socket failed.
func (p *PacketConn) Closed() bool { return p.life.closed() }

// Close stops reading, drops the datagrams still queued for sending
// (UDP promises no delivery; Counters.DatagramsDropped counts them) and
// closes the descriptor on the socket's loop; OnClose follows. A second
// Close returns ErrClosed.
func (p *PacketConn) Close() error {
	if !p.life.markClosed() {
		return ErrClosed
	}
	p.cancelPending()
	p.decref()
	return nil
}

// fail closes the socket with err as the reason, unless it is closed
// already.
func (p *PacketConn) fail(err error) {
	if !p.life.markClosed() {
		return
	}
	p.reason.Store(&err)
	p.cancelPending()
	p.decref()
}

func (p *PacketConn) decref() {
	if p.life.decref() {
		p.loop.Post(packetTeardown{p})
	}
}

// packetTeardown is the task that closes a datagram socket on its loop,
// once no operation holds it.
type packetTeardown struct{ p *PacketConn }

func (t packetTeardown) RunTask(*pool.Loop) {
	p := t.p
	p.closeDescriptor()
	p.rmu.Lock()
	p.releaseReader()
	p.rmu.Unlock()
	p.wmu.Lock()
	for _, o := range slices.Concat(p.wq, p.gather) {
		o.b.Release()
		p.env.Counters.DatagramsDropped.Add(1)
	}
	p.wq, p.wqBytes, p.gather = nil, 0, nil
	p.wmu.Unlock()
	var err error
	if r := p.reason.Load(); r != nil {
		err = *r
	}
	p.callClose(err)
	close(p.done)
}

// PauseReads stops taking datagrams from the socket until ResumeReads:
// what arrives meanwhile waits in the kernel's receive buffer, and what
// does not fit there is dropped by the kernel, as UDP does. Safe from any
// goroutine; a datagram being delivered when it is called is still
// delivered.
func (p *PacketConn) PauseReads() { p.paused.Store(true) }

// ResumeReads undoes PauseReads. Safe from any goroutine.
func (p *PacketConn) ResumeReads() {
	if p.paused.Swap(false) && p.life.incref() {
		p.loop.Post(packetResume{p})
	}
}

// packetResume reads what arrived while the socket was paused; it holds a
// reference.
type packetResume struct{ p *PacketConn }

func (t packetResume) RunTask(*pool.Loop) {
	defer t.p.decref()
	t.p.readSome(false)
}

// WriteTo sends one datagram, the concatenation of bufs, to to. It returns
// once the kernel has taken it, or once it was queued because the send
// buffer is full (on Linux, also while the loop delivers a batch: then it
// leaves with the batch's other answers): the bytes are copied, so bufs
// may be reused at once. Errors that belong to this datagram (too large,
// unreachable, a destination of the wrong family, the write limit) refuse
// it whole and leave the socket usable; a queued datagram that fails later
// is dropped and counted in DatagramsDropped.
func (p *PacketConn) WriteTo(to netip.AddrPort, bufs ...[]byte) error {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	if n > MaxDatagramSize {
		return fmt.Errorf("%w: %d bytes", ErrDatagramTooLarge, n)
	}
	if err := p.checkDest(to); err != nil {
		return err
	}
	if !p.life.incref() {
		return ErrClosed
	}
	defer p.decref()
	p.wmu.Lock()
	defer p.wmu.Unlock()
	take := func() *pool.Buffer { return pool.ChainFrom(p.env.Buffers, bufs...) }
	if len(p.wq) == 0 {
		if p.gathering {
			return p.gatherLocked(to, n, take)
		}
		sent, err := p.sendNowLocked(bufs, nil, to)
		if sent || err != nil {
			return err
		}
	}
	return p.queueLocked(to, n, take)
}

// WriteBufferTo sends the datagram held in b (a chain is one datagram) to
// to and takes b: it is released once the kernel has taken it, or on any
// error. Echoing what OnPacket delivered this way copies nothing.
func (p *PacketConn) WriteBufferTo(to netip.AddrPort, b *pool.Buffer) error {
	n := b.ChainLen()
	if n > MaxDatagramSize {
		b.Release()
		return fmt.Errorf("%w: %d bytes", ErrDatagramTooLarge, n)
	}
	if err := p.checkDest(to); err != nil {
		b.Release()
		return err
	}
	if !p.life.incref() {
		b.Release()
		return ErrClosed
	}
	defer p.decref()
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if len(p.wq) == 0 && p.gathering {
		err := p.gatherLocked(to, n, func() *pool.Buffer { return b })
		if err != nil {
			b.Release()
		}
		return err
	}
	if len(p.wq) == 0 {
		// sendNowLocked takes b unless it reports (false, nil).
		sent, err := p.sendNowLocked(nil, b, to)
		if sent || err != nil {
			return err
		}
	}
	err := p.queueLocked(to, n, func() *pool.Buffer { return b })
	if err != nil {
		b.Release()
	}
	return err
}

// gatherLocked adds a datagram of n bytes to the batch that goes out after
// the delivery in progress, unless that would pass the write limit. take
// yields its buffers.
func (p *PacketConn) gatherLocked(to netip.AddrPort, n int, take func() *pool.Buffer) error {
	if p.wqBytes+p.gatherBytes+int64(n) > p.limit {
		return &WriteLimitError{Queued: p.wqBytes + p.gatherBytes, Write: n, Limit: p.limit}
	}
	p.gather = append(p.gather, packetOut{b: take(), n: n, to: to})
	p.gatherBytes += int64(n)
	return nil
}

// startGathering makes sends wait for the end of the delivery about to
// run; sendGathered sends them.
func (p *PacketConn) startGathering() {
	p.wmu.Lock()
	p.gathering = true
	p.wmu.Unlock()
}

func (p *PacketConn) sendGathered() {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.gathering = false
	if len(p.gather) > 0 {
		p.sendBatchLocked()
	}
	clear(p.gather)
	p.gather, p.gatherBytes = p.gather[:0], 0
}

// queueLocked queues a datagram of n bytes that the kernel could not take
// now, unless that would pass the write limit. take yields its buffers.
func (p *PacketConn) queueLocked(to netip.AddrPort, n int, take func() *pool.Buffer) error {
	if p.wqBytes+int64(n) > p.limit {
		return &WriteLimitError{Queued: p.wqBytes, Write: n, Limit: p.limit}
	}
	p.wq = append(p.wq, packetOut{b: take(), n: n, to: to})
	p.wqBytes += int64(n)
	p.env.Counters.DatagramsQueued.Add(1)
	p.waitWritableLocked()
	return nil
}

// flush sends the queued datagrams, oldest first, while the socket takes
// them. A queued datagram that fails is dropped and counted: its writer
// has long returned.
func (p *PacketConn) flush() {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	for len(p.wq) > 0 {
		o := p.wq[0]
		sent, err := p.sendNowLocked(nil, o.b, o.to)
		if !sent && err == nil {
			return
		}
		if err != nil {
			p.env.Counters.DatagramsDropped.Add(1)
		}
		p.wq[0] = packetOut{}
		p.wq = p.wq[1:]
		p.wqBytes -= int64(o.n)
	}
	p.wq = nil
	p.queueDrainedLocked()
}

// QueuedBytes is the bytes of datagrams waiting for room in the send
// buffer.
func (p *PacketConn) QueuedBytes() int64 {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.wqBytes
}

// deliver hands one datagram to the handler; a panic closes the socket.
func (p *PacketConn) deliver(b *pool.Buffer, from netip.AddrPort) {
	defer func() {
		if r := recover(); r != nil {
			p.env.Counters.Panics.Add(1)
			p.fail(&PanicError{Value: r, Stack: debug.Stack()})
		}
	}()
	p.env.addPacketIn(p.loop, b.ChainLen())
	p.h.OnPacket(p, b, from)
}

func (p *PacketConn) callClose(err error) {
	defer func() {
		if r := recover(); r != nil {
			p.env.Counters.Panics.Add(1)
		}
	}()
	p.h.OnClose(p, err)
}

// chainFor is how many pooled buffers a datagram of up to max bytes
// needs.
func chainFor(max, size int) int {
	if max == 0 {
		return 1
	}
	return (max + size - 1) / size
}

// testHookPacketFull, when set by a test, may make the send of an n-byte
// datagram meet a full send buffer: loopback frees a datagram's
// send-buffer charge as it transmits it, so a real one takes a slowed
// interface (TestPacketFullSendBufferQueuesAndFlushesInOrder).
var testHookPacketFull atomic.Pointer[func(n int) bool]

// packetFullHook reports whether the test hook makes this send meet a
// full send buffer.
func packetFullHook(n int) bool {
	h := testHookPacketFull.Load()
	return h != nil && (*h)(n)
}

// testHookRecvErr, when set by a test, may make a datagram receive fail
// with a transient error (ENOMEM on Linux, before the call; WSAENOBUFS on
// Windows, for a receive that completed), so the bound on errors in a row
// (packetErrorRun) can be reached.
var testHookRecvErr atomic.Pointer[func() bool]

// recvErrHook reports whether the test hook fails this receive.
func recvErrHook() bool {
	h := testHookRecvErr.Load()
	return h != nil && (*h)()
}
