package sock

import (
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/pool"
)

// On Linux a datagram socket runs on readiness on both backends (an
// io_uring poller reports readiness through multishot poll requests):
// recvmmsg takes up to packetBatch datagrams a call into pooled buffers,
// and sendmsg sends from the writer's goroutine. The socket is registered
// for writable edges only while datagrams are queued: a UDP socket's
// write-space callback fires for every datagram the kernel frees, so a
// standing registration would cost an event per datagram sent.

// packetBatch is how many datagrams one recvmmsg may take.
const packetBatch = 8

// packetGather is how many slices WriteTo passes to sendmsg as they are;
// a datagram in more pieces is first copied into pooled buffers.
const packetGather = 16

// packetReader is the receive state: a message header, an address buffer
// and a chain of buffers per datagram slot. A slot keeps its buffers
// until a datagram is delivered in them, so a read takes from the pool
// only what the last one handed on. Guarded by rmu.
type packetReader struct {
	hdrs [packetBatch]unix.Mmsghdr
	rsa  [packetBatch]unix.RawSockaddrAny
	slot [packetBatch]*pool.Buffer
	iov  []unix.Iovec // packetBatch × chain
	// at and n: the last batch's datagrams at..n-1 are not delivered yet
	// (the handler paused the socket); they go before anything new.
	at, n int
	errs  int // receive errors in a row
}

// packetWriter is the send state, guarded by wmu.
type packetWriter struct {
	rsa     unix.RawSockaddrAny
	iov     [packetGather]unix.Iovec
	msg     unix.Msghdr
	big     []byte // a datagram in more than packetGather pieces is copied here, made on first use
	wantOut bool   // registered for writable edges
	// sendmmsg's headers, addresses and iovecs for a gathered batch.
	mhdrs [packetSendBatch]unix.Mmsghdr
	mrsa  [packetSendBatch]unix.RawSockaddrAny
	miov  []unix.Iovec
}

// packetSendBatch is how many gathered datagrams one sendmmsg takes.
const packetSendBatch = 16

// open makes the socket for a, binds it and starts reading. On failure
// nothing is left open.
func (p *PacketConn) open(a netip.AddrPort, o PacketOptions) error {
	env := p.env
	fd, err := unix.Socket(family(a), unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	env.Counters.FDs.Add(1)
	p.fd = fd
	if err := p.bind(a, o); err != nil {
		closeFD(env, fd)
		return err
	}
	p.addr = localAddr(fd)
	p.rd = &packetReader{iov: make([]unix.Iovec, packetBatch*p.chain)}
	p.life.init()
	p.loop = env.Group.Pick()
	if err := registerFD(env, p.loop, &p.reg, p, fd, poller.Readable|poller.EdgeTriggered); err != nil {
		return err
	}
	// Datagrams may have arrived between bind and registration, their edge
	// gone: read once from the loop.
	p.readable = true
	p.life.acquire()
	p.loop.Post(packetResume{p})
	return nil
}

func (p *PacketConn) bind(a netip.AddrPort, o PacketOptions) error {
	if o.ReusePort {
		if err := unix.SetsockoptInt(p.fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	if err := setBufferSizes(p.fd, o.SendBuffer, o.ReceiveBuffer); err != nil {
		return err
	}
	if err := unix.Bind(p.fd, toSockaddr(a)); err != nil {
		return os.NewSyscallError("bind", err)
	}
	if p.remote.IsValid() {
		// UDP's connect only fixes the peer: it returns at once.
		if err := unix.Connect(p.fd, toSockaddr(p.remote)); err != nil {
			return os.NewSyscallError("connect", err)
		}
	}
	return nil
}

// HandleEvent implements pool.Handler.
func (p *PacketConn) HandleEvent(_ *pool.Loop, ev *poller.Event) {
	if !p.life.incref() {
		return
	}
	defer p.decref()
	if ev.Flags&(poller.In|poller.Hup|poller.Err) != 0 {
		p.readSome(true)
	}
	if ev.Flags&poller.Out != 0 {
		p.flush()
	}
}

// readSome reads and delivers datagrams while the socket has them, at
// most packetBurst calls before the rest waits behind the loop's other
// work. edge says a readiness event brought new input. The caller holds a
// reference.
func (p *PacketConn) readSome(edge bool) {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	if edge {
		p.readable = true
	}
	if !p.deliverBatch() {
		return
	}
	for burst := 0; p.readable && !p.paused.Load() && !p.life.closed(); burst++ {
		if burst == packetBurst {
			p.life.acquire()
			p.loop.Post(packetResume{p})
			return
		}
		n, err := p.recvBatch()
		switch err {
		case nil:
		case unix.EAGAIN, unix.EINTR:
			p.readable = err == unix.EINTR
			p.rd.errs = 0
			continue
		case unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EHOSTDOWN, unix.EPROTO:
			// A peer's ICMP error, reported once (IP_RECVERR, or a
			// connected socket): that peer's trouble, never the socket's.
			p.env.Counters.DatagramErrors.Add(1)
			continue
		case unix.EBADF, unix.EFAULT, unix.EINVAL, unix.ENOTSOCK:
			p.rmu.Unlock()
			p.fail(os.NewSyscallError("recvmmsg", err))
			p.rmu.Lock()
			return
		default:
			// A momentary shortage (ENOMEM, ENOBUFS): not the socket's
			// trouble, unless it never ends.
			p.env.Counters.DatagramErrors.Add(1)
			if p.rd.errs++; p.rd.errs == packetErrorRun {
				p.rmu.Unlock()
				p.fail(os.NewSyscallError("recvmmsg", err))
				p.rmu.Lock()
				return
			}
			continue
		}
		p.rd.errs = 0
		p.rd.at, p.rd.n = 0, n
		p.startGathering()
		p.deliverBatch()
		p.sendGathered()
		if n < packetBatch {
			// The receive queue is empty: the next datagram raises a new
			// edge.
			p.readable = false
		}
	}
}

// recvBatch makes one recvmmsg into the slots, taking buffers for the
// slots the last batch emptied.
func (p *PacketConn) recvBatch() (int, error) {
	rd := p.rd
	k := p.chain
	for i := range rd.hdrs {
		if rd.slot[i] == nil {
			rd.slot[i] = p.env.Buffers.GetChain(k * p.env.Buffers.Size())
		}
		j := 0
		for x := rd.slot[i]; x != nil; x = x.Next() {
			sp := x.Space()
			rd.iov[i*k+j] = iovecOf(sp)
			j++
		}
		h := &rd.hdrs[i]
		h.Hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&rd.rsa[i])), Namelen: unix.SizeofSockaddrAny, Iov: &rd.iov[i*k]}
		h.Hdr.SetIovlen(j)
		h.Len = 0
	}
	if recvErrHook() {
		return 0, unix.ENOMEM
	}
	// The headers, addresses and iovecs live in p.rd, and the buffers they
	// point into are held by its slots: all reachable and unmoved for the
	// call.
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(p.fd), uintptr(unsafe.Pointer(&rd.hdrs[0])), packetBatch,
		unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// deliverBatch hands the batch's datagrams on, in the order the kernel
// queued them, until the handler pauses or closes the socket. It reports
// whether the whole batch went. Called with rmu held.
func (p *PacketConn) deliverBatch() bool {
	rd := p.rd
	for ; rd.at < rd.n; rd.at++ {
		if p.paused.Load() || p.life.closed() {
			// The rest waits for ResumeReads, or goes with the socket.
			return false
		}
		i := rd.at
		m := &rd.hdrs[i]
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			// Larger than MaxDatagram: never delivered cut short. The
			// slot keeps its buffers; nothing was committed to them.
			p.env.Counters.DatagramsTruncated.Add(1)
			continue
		}
		b := rd.slot[i]
		rd.slot[i] = nil
		p.deliver(commitChain(b, int(m.Len)), rawToAddrPort(&rd.rsa[i]))
	}
	return true
}

// releaseReader gives the slots' buffers back. Called with rmu held, at
// teardown.
func (p *PacketConn) releaseReader() {
	for i, b := range p.rd.slot {
		if b != nil {
			b.Release()
			p.rd.slot[i] = nil
		}
	}
}

// cancelPending has nothing to do on Linux: no operation is in flight.
func (p *PacketConn) cancelPending() {}

func (p *PacketConn) closeDescriptor() { closeRegistered(p.env, p.loop, &p.reg, p.fd) }

// sendNowLocked offers one datagram to the kernel: bufs, or the chain b.
// It reports sent, or (false, nil) when the send buffer is full, or the
// datagram's own error; it takes b (releases it) unless it reports
// (false, nil). Called with wmu held.
func (p *PacketConn) sendNowLocked(bufs [][]byte, b *pool.Buffer, to netip.AddrPort) (bool, error) {
	sent, err := p.sendmsgLocked(bufs, b, to)
	if b != nil && (sent || err != nil) {
		b.Release()
	}
	return sent, err
}

// sendmsgLocked makes the sendmsg for sendNowLocked.
func (p *PacketConn) sendmsgLocked(bufs [][]byte, b *pool.Buffer, to netip.AddrPort) (bool, error) {
	w := &p.pw
	namelen := putDatagramAddr(&w.rsa, p.v6, p.sendAddr(to))
	pieces := 0
	for _, x := range bufs {
		if len(x) > 0 {
			pieces++
		}
	}
	for x := b; x != nil; x = x.Next() {
		if x.Len() > 0 {
			pieces++
		}
	}
	if pieces > packetGather {
		// More pieces than the iovec array: gather them by copying.
		if w.big == nil {
			w.big = make([]byte, 0, MaxDatagramSize)
		}
		one := w.big[:0]
		for _, x := range bufs {
			one = append(one, x...)
		}
		for x := b; x != nil; x = x.Next() {
			one = append(one, x.Bytes()...)
		}
		bufs, b = [][]byte{one}, nil
	}
	k, n := 0, 0
	for _, x := range bufs {
		if len(x) > 0 {
			w.iov[k] = iovecOf(x)
			k++
			n += len(x)
		}
	}
	for x := b; x != nil; x = x.Next() {
		if x.Len() > 0 {
			bs := x.Bytes()
			w.iov[k] = iovecOf(bs)
			k++
			n += len(bs)
		}
	}
	if packetFullHook(n) {
		clear(w.iov[:k])
		return false, nil
	}
	w.msg = unix.Msghdr{Namelen: namelen}
	if namelen > 0 {
		w.msg.Name = (*byte)(unsafe.Pointer(&w.rsa))
	}
	if k > 0 {
		w.msg.Iov = &w.iov[0]
		w.msg.SetIovlen(k)
	}
	for {
		// The header, address and iovecs live in p.pw; the bytes are the
		// caller's, reachable for the call.
		_, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(p.fd), uintptr(unsafe.Pointer(&w.msg)), unix.MSG_DONTWAIT)
		switch e {
		case 0:
			clear(w.iov[:k])
			p.env.addPacketsOut(p.loop, 1, n)
			return true, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			clear(w.iov[:k])
			return false, nil
		}
		clear(w.iov[:k])
		return false, os.NewSyscallError("sendmsg", e)
	}
}

// waitWritableLocked registers for writable edges while datagrams are
// queued. Called with wmu held.
func (p *PacketConn) waitWritableLocked() {
	if p.pw.wantOut {
		return
	}
	p.pw.wantOut = true
	p.reinterest(poller.Readable | poller.Writable | poller.EdgeTriggered)
}

// reinterest changes the registration; a poller that cannot is a broken
// socket. The poller reports what already holds after the change (room
// that came before it included). Called with wmu held.
func (p *PacketConn) reinterest(in poller.Interest) {
	if err := p.loop.Poller().Modify(p.fd, p.reg.Token(), in); err != nil {
		p.env.Counters.CloseErrors.Add(1)
		go p.fail(err) // not under wmu: fail may reach teardown's locks
		return
	}
	// A ring-backed poller applies the change at its loop's next wait.
	p.loop.Kick()
}

// sendBatchLocked sends the gathered datagrams, oldest first, with
// sendmmsg. Those the send buffer has no room for join the queue (which
// is empty: sends gather only then); one that fails is dropped and
// counted, as a queued one is. Called with wmu held.
func (p *PacketConn) sendBatchLocked() {
	w := &p.pw
	g := p.gather
	for i := 0; i < len(g); {
		k := min(packetSendBatch, len(g)-i)
		w.miov = w.miov[:0]
		for j := range k {
			o := &g[i+j]
			namelen := putDatagramAddr(&w.mrsa[j], p.v6, p.sendAddr(o.to))
			start := len(w.miov)
			for x := o.b; x != nil; x = x.Next() {
				if x.Len() > 0 {
					bs := x.Bytes()
					w.miov = append(w.miov, iovecOf(bs))
				}
			}
			w.mhdrs[j] = unix.Mmsghdr{Hdr: unix.Msghdr{Namelen: namelen}}
			if namelen > 0 {
				w.mhdrs[j].Hdr.Name = (*byte)(unsafe.Pointer(&w.mrsa[j]))
			}
			if n := len(w.miov) - start; n > 0 {
				w.mhdrs[j].Hdr.SetIovlen(n)
			}
		}
		// The iovecs' slice may have grown while filling: point the
		// headers into it only now.
		for j, at := 0, 0; j < k; j++ {
			if n := int(w.mhdrs[j].Hdr.Iovlen); n > 0 {
				w.mhdrs[j].Hdr.Iov = &w.miov[at]
				at += n
			}
		}
		sent := k
		if packetFullHook(g[i].n) {
			sent = 0
		}
		var e unix.Errno
		if sent > 0 {
			// Headers, addresses and iovecs live in p.pw; the bytes in the
			// gathered buffers: all reachable and unmoved for the call.
			r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(p.fd), uintptr(unsafe.Pointer(&w.mhdrs[0])), uintptr(k),
				unix.MSG_DONTWAIT, 0, 0)
			sent, e = int(r), errno
		} else {
			e = unix.EAGAIN
		}
		clear(w.miov)
		if e == 0 {
			n := 0
			for j := range sent {
				n += g[i+j].n
				g[i+j].b.Release()
			}
			p.env.addPacketsOut(p.loop, sent, n)
			i += sent
			continue
		}
		switch e {
		case unix.EINTR:
		case unix.EAGAIN:
			for _, o := range g[i:] {
				p.wq = append(p.wq, o)
				p.wqBytes += int64(o.n)
				p.env.Counters.DatagramsQueued.Add(1)
			}
			p.waitWritableLocked()
			return
		default:
			g[i].b.Release()
			p.env.Counters.DatagramsDropped.Add(1)
			i++
		}
	}
}

// queueDrainedLocked stops asking for writable edges once the queue is
// empty. Called with wmu held.
func (p *PacketConn) queueDrainedLocked() {
	if p.pw.wantOut {
		p.pw.wantOut = false
		p.reinterest(poller.Readable | poller.EdgeTriggered)
	}
}

// putDatagramAddr writes to as a raw socket address for a socket of the given
// family (IPv4 destinations become mapped addresses on an IPv6 socket)
// and returns its length; checkDest has refused a family the socket
// cannot reach.
func putDatagramAddr(rsa *unix.RawSockaddrAny, v6 bool, to netip.AddrPort) uint32 {
	if !to.IsValid() {
		return 0 // a connected socket's peer: no address, so the kernel uses its cached route
	}
	ip := to.Addr()
	port := [2]byte{byte(to.Port() >> 8), byte(to.Port())}
	if !v6 {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa)) // the buffer is large enough for any family
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.Unmap().As4()}
		*(*[2]byte)(unsafe.Pointer(&sa.Port)) = port // network byte order
		return unix.SizeofSockaddrInet4
	}
	sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa)) // the buffer is large enough for any family
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16()}
	*(*[2]byte)(unsafe.Pointer(&sa.Port)) = port // network byte order
	return unix.SizeofSockaddrInet6
}
