package sock

import (
	"fmt"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/pool"
)

// The Windows half of packet_linux.go: a datagram socket's receives and
// sends as overlapped operations on the completion port.
//
// Receives: packetRecvSlots WSARecvFroms stay posted, each into its own
// buffers and address. Winsock fills them in the order they were posted;
// their packets may reach different threads in any order, so a completed
// receive waits in its slot until the slots before it completed, and they
// are delivered in posting order (the slots are posted and delivered
// round the ring). Sends: one WSASendTo in flight, from pooled buffers
// (WriteTo copies; WriteBufferTo hands its buffer over); the rest wait in
// the queue and go out one by one as the one before completes.

const (
	packetRecvSlots           = 4
	opPacketSend    poller.Op = 1
	opPacketRecv0   poller.Op = 16 // opPacketRecv0+i is receive slot i
)

type packetReader struct {
	ops  [packetRecvSlots]*packetRecvOp
	next int  // the slot delivered next
	tail int  // the slot posted next
	skip bool // skip-on-success took effect on this socket
	errs int  // receive errors in a row
}

type packetRecvOp struct {
	poller.Operation
	p      *PacketConn
	busy   bool         // posted, under rmu
	done   bool         // completed, waiting for its turn, under rmu
	b      *pool.Buffer // the buffers being filled
	wsa    []windows.WSABuf
	flags  uint32
	rsa    windows.RawSockaddrAny
	rsaLen int32
	inline // the completion: at once (on its way to the loop as a task) or from a packet, kept until its turn
}

type packetWriter struct {
	op       packetSendOp
	inflight bool
}

type packetSendOp struct {
	poller.Operation
	p   *PacketConn
	b   *pool.Buffer
	n   int
	wsa []windows.WSABuf
	rsa windows.RawSockaddrAny
	inline
}

// open makes the socket for a, binds it, associates it with the port and
// has an I/O thread post the first receives. On failure nothing is left
// open.
func (p *PacketConn) open(a netip.AddrPort, o PacketOptions) error {
	env := p.env
	if o.ReusePort {
		return fmt.Errorf("%w: Windows has no SO_REUSEPORT", ErrNotSupported)
	}
	s, err := windows.WSASocket(int32(family(a)), windows.SOCK_DGRAM, windows.IPPROTO_UDP, nil, 0,
		windows.WSA_FLAG_OVERLAPPED|windows.WSA_FLAG_NO_HANDLE_INHERIT)
	if err != nil {
		return os.NewSyscallError("WSASocket", err)
	}
	env.Counters.FDs.Add(1)
	p.fd = s
	if err := setBufferSizes(s, o.SendBuffer, o.ReceiveBuffer); err != nil {
		closeFD(env, s)
		return err
	}
	if err := windows.Bind(s, toSockaddr(a)); err != nil {
		closeFD(env, s)
		return os.NewSyscallError("bind", err)
	}
	if p.remote.IsValid() {
		if err := windows.Connect(s, toSockaddr(p.remote)); err != nil {
			closeFD(env, s)
			return os.NewSyscallError("connect", err)
		}
	}
	// Windows fails the next receive with WSAECONNRESET after a send drew
	// an ICMP port unreachable; turn that off. The receive path survives it
	// anyway where the option is missing (Wine makes it a no-op).
	off := uint32(0)
	var ret uint32
	windows.WSAIoctl(s, windows.SIO_UDP_CONNRESET, (*byte)(unsafe.Pointer(&off)), 4, nil, 0, &ret, nil, 0)
	p.addr = localAddr(s)
	p.rd = &packetReader{}
	for i := range p.rd.ops {
		op := &packetRecvOp{p: p, wsa: make([]windows.WSABuf, p.chain)}
		op.Op = opPacketRecv0 + poller.Op(i)
		p.rd.ops[i] = op
	}
	p.pw.op.p = p
	p.pw.op.Op = opPacketSend
	p.life.init()
	p.loop = env.Group.Pick()
	tok := p.loop.Table().Insert(&p.reg, p)
	if err := p.loop.Poller().Add(s, tok, 0); err != nil {
		p.loop.Table().Remove(&p.reg)
		closeFD(env, s)
		return err
	}
	if env.skip.Skip && setSkip(s) {
		p.rd.skip = true
		env.Counters.SkipSockets.Add(1)
	}
	// The receives are posted from an I/O thread, as the listener's
	// accepts are.
	p.life.acquire()
	p.loop.Post(packetResume{p})
	return nil
}

// HandleEvent implements pool.Handler: an operation completed.
func (p *PacketConn) HandleEvent(_ *pool.Loop, ev *poller.Event) {
	if ev.Flags&poller.Done == 0 {
		return
	}
	switch i := int(ev.Op - opPacketRecv0); {
	case ev.Op == opPacketSend:
		p.sendDone(uint32(ev.Res), ev.Err)
	case ev.Op >= opPacketRecv0 && i < len(p.rd.ops):
		p.recvDone(p.rd.ops[i], uint32(ev.Res), ev.Err)
	default:
		panic(fmt.Sprintf("sock: completion of unknown datagram operation %d", ev.Op))
	}
}

// readSome delivers what completed and posts receives on the free slots.
// The caller holds a reference.
func (p *PacketConn) readSome(bool) {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	p.deliverReadyLocked()
	p.postRecvsLocked()
}

// postRecvsLocked posts a receive on each free slot, in ring order.
// Called with rmu held; the closed check under rmu orders it against the
// cancellation.
func (p *PacketConn) postRecvsLocked() {
	rd := p.rd
	for !p.life.closed() && !p.paused.Load() {
		op := rd.ops[rd.tail]
		if op.busy || op.done {
			return
		}
		rd.tail = (rd.tail + 1) % len(rd.ops)
		op.busy = true
		op.b = p.env.Buffers.GetChain(p.chain * p.env.Buffers.Size())
		nb := 0
		for x := op.b; x != nil; x = x.Next() {
			sp := x.Space()
			op.wsa[nb] = windows.WSABuf{Len: uint32(len(sp)), Buf: &sp[0]}
			nb++
		}
		op.flags = 0
		op.rsaLen = int32(unsafe.Sizeof(op.rsa))
		p.life.acquire() // the operation's reference
		op.Arm()
		var n uint32
		err := windows.WSARecvFrom(p.fd, &op.wsa[0], uint32(nb), &n, &op.flags, &op.rsa, &op.rsaLen, &op.Overlapped, nil)
		settleIssue(p.env, p.loop, rd.skip, &op.Operation, &op.inline, op, n, err)
	}
}

// RunTask implements pool.Task for a receive that completed at once.
func (op *packetRecvOp) RunTask(*pool.Loop) { op.p.recvDone(op, op.inline.n, op.inline.errno) }

// recvDone records a receive's completion, delivers what is in turn and
// drops the operation's reference.
func (p *PacketConn) recvDone(op *packetRecvOp, n, errno uint32) {
	defer p.decref()
	p.rmu.Lock()
	defer p.rmu.Unlock()
	op.busy = false
	op.done = true
	if errno == 0 && recvErrHook() {
		errno = uint32(windows.WSAENOBUFS)
	}
	op.inline = inline{n: n, errno: errno}
	p.deliverReadyLocked()
	p.postRecvsLocked()
}

// deliverReadyLocked delivers the completed receives in posting order,
// until one has not completed or the handler pauses. Called with rmu
// held.
func (p *PacketConn) deliverReadyLocked() {
	rd := p.rd
	for {
		op := rd.ops[rd.next]
		if !op.done {
			return
		}
		closed := p.life.closed()
		if p.paused.Load() && !closed {
			return
		}
		op.done = false
		rd.next = (rd.next + 1) % len(rd.ops)
		b := op.b
		op.b = nil
		res := op.inline
		switch e := windows.Errno(res.errno); {
		case closed:
			b.Release()
		case e == 0:
			rd.errs = 0
			p.deliver(commitChain(b, int(res.n)), rawToAddrPort(&op.rsa))
		case e == windows.WSAEMSGSIZE || e == windows.ERROR_MORE_DATA:
			// Larger than MaxDatagram: never delivered cut short.
			b.Release()
			p.env.Counters.DatagramsTruncated.Add(1)
		case peerTrouble(e):
			// A peer's ICMP error, one per error: never the socket's.
			b.Release()
			p.env.Counters.DatagramErrors.Add(1)
		default:
			b.Release()
			p.env.Counters.DatagramErrors.Add(1)
			if rd.errs++; rd.errs == packetErrorRun {
				p.rmu.Unlock()
				p.fail(os.NewSyscallError("WSARecvFrom", e))
				p.rmu.Lock()
			}
		}
	}
}

// peerTrouble reports whether a receive's error is a peer's, reported by
// ICMP (a connected socket's, or WSAECONNRESET where SIO_UDP_CONNRESET
// could not be turned off): one comes per error the network sent, so it
// cannot spin.
func peerTrouble(e windows.Errno) bool {
	switch e {
	case windows.WSAECONNRESET, windows.WSAENETRESET, windows.WSAECONNREFUSED, windows.WSAEHOSTUNREACH, windows.WSAENETUNREACH,
		windows.ERROR_PORT_UNREACHABLE, windows.ERROR_HOST_UNREACHABLE, windows.ERROR_NETWORK_UNREACHABLE,
		windows.ERROR_CONNECTION_REFUSED, windows.ERROR_NETNAME_DELETED:
		return true
	}
	return false
}

// releaseReader gives back the buffers of receives that completed and were
// never delivered. Called with rmu held, at teardown, when no receive is
// in flight.
func (p *PacketConn) releaseReader() {
	for _, op := range p.rd.ops {
		if op.b != nil {
			op.b.Release()
			op.b = nil
		}
		op.done = false
	}
}

// cancelPending has the loop cancel the operations in flight: their
// packets (995) drop their references. It runs as a task because Close
// may come from OnPacket, under rmu, which the cancellation takes to
// order itself after any receive being posted.
func (p *PacketConn) cancelPending() {
	p.life.acquire()
	p.loop.Post(packetCancel{p})
}

type packetCancel struct{ p *PacketConn }

func (t packetCancel) RunTask(*pool.Loop) {
	p := t.p
	p.rmu.Lock()
	p.wmu.Lock()
	windows.CancelIoEx(p.fd, nil)
	p.wmu.Unlock()
	p.rmu.Unlock()
	p.decref()
}

func (p *PacketConn) closeDescriptor() {
	p.loop.Table().Remove(&p.reg)
	closeFD(p.env, p.fd)
}

// sendNowLocked issues a WSASendTo of one datagram, bufs (copied into
// pooled buffers) or the chain b, unless one is in flight: then it
// reports (false, nil) and the datagram waits in the queue. It takes b
// unless it reports (false, nil). Called with wmu held.
func (p *PacketConn) sendNowLocked(bufs [][]byte, b *pool.Buffer, to netip.AddrPort) (bool, error) {
	w := &p.pw
	op := &w.op
	if w.inflight || p.life.closed() {
		return false, nil
	}
	namelen := putDatagramAddr(&op.rsa, p.v6, p.sendAddr(to))
	n := b.ChainLen() // 0 for no chain
	for _, x := range bufs {
		n += len(x)
	}
	if packetFullHook(n) {
		return false, nil
	}
	if b == nil {
		b = pool.ChainFrom(p.env.Buffers, bufs...)
	}
	op.wsa = op.wsa[:0]
	op.n = 0
	for x := b; x != nil; x = x.Next() {
		if x.Len() > 0 {
			bs := x.Bytes()
			op.wsa = append(op.wsa, windows.WSABuf{Len: uint32(len(bs)), Buf: &bs[0]})
			op.n += len(bs)
		}
	}
	if len(op.wsa) == 0 {
		// An empty datagram still needs a WSABUF to point at.
		op.wsa = append(op.wsa, windows.WSABuf{})
	}
	op.b = b
	w.inflight = true
	p.life.acquire() // the operation's reference
	op.Arm()
	var done uint32
	to4 := &op.rsa
	if namelen == 0 {
		to4 = nil // connected: the socket's peer
	}
	err := windows.WSASendTo(p.fd, &op.wsa[0], uint32(len(op.wsa)), &done, 0, to4, namelen, &op.Overlapped, nil)
	if err != nil && err != windows.ERROR_IO_PENDING && op.Complete() {
		// Failed at once: no packet will come. The datagram's own error
		// goes to its writer.
		w.inflight = false
		op.b = nil
		b.Release()
		p.life.decref() // not the last: the caller holds one
		return false, os.NewSyscallError("WSASendTo", err)
	}
	settleIssue(p.env, p.loop, p.rd.skip, &op.Operation, &op.inline, op, done, err)
	return true, nil
}

// RunTask implements pool.Task for a send that completed at once.
func (op *packetSendOp) RunTask(*pool.Loop) { op.p.sendDone(op.inline.n, op.inline.errno) }

// sendDone ends the send in flight, issues the next queued one and drops
// the operation's reference.
func (p *PacketConn) sendDone(n, errno uint32) {
	defer p.decref()
	p.wmu.Lock()
	op := &p.pw.op
	p.pw.inflight = false
	op.b.Release()
	op.b = nil
	clear(op.wsa)
	if errno == 0 {
		p.env.addPacketsOut(p.loop, 1, int(n))
	} else {
		p.env.Counters.DatagramsDropped.Add(1)
	}
	p.wmu.Unlock()
	if !p.life.closed() {
		p.flush()
	}
}

// sendBatchLocked has nothing to send on Windows: the loop never gathers
// there (readSome does not start it), each send is its own WSASendTo.
func (p *PacketConn) sendBatchLocked() {}

// waitWritableLocked has nothing to do on Windows: the send in flight
// completes and issues the next.
func (p *PacketConn) waitWritableLocked() {}

// queueDrainedLocked has nothing to undo on Windows.
func (p *PacketConn) queueDrainedLocked() {}

// putDatagramAddr writes to as a raw socket address for a socket of the
// given family (IPv4 destinations become mapped addresses on an IPv6
// socket) and returns its length; checkDest has refused a family the
// socket cannot reach.
func putDatagramAddr(rsa *windows.RawSockaddrAny, v6 bool, to netip.AddrPort) int32 {
	if !to.IsValid() {
		return 0 // a connected socket's peer
	}
	ip := to.Addr()
	switch {
	case !v6:
		ip = ip.Unmap()
	case ip.Is4():
		ip = netip.AddrFrom16(ip.As16())
	}
	putSockaddr(rsa, netip.AddrPortFrom(ip, to.Port()))
	return sockaddrLen(rsa)
}
