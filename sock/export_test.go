package sock

import "github.com/ioreactor/reactor/pool"

// FD exposes a connection's descriptor number to the fd-reuse test.
func FD(c *Conn) int { return int(c.fd) }

// HoldsWriteQueue reports whether c holds a write queue now.
func HoldsWriteQueue(c *Conn) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.wq != nil
}

// SetHandshakeHook runs f on each TLS handshake's worker before the
// handshake.
func SetHandshakeHook(f func()) (restore func()) {
	old := testHookHandshake.Swap(&f)
	return func() { testHookHandshake.Store(old) }
}

// SetPacketFullHook makes every datagram send for which f (given the
// datagram's size) returns true meet a full send buffer, as if the kernel
// had said EAGAIN.
func SetPacketFullHook(f func(n int) bool) (restore func()) {
	old := testHookPacketFull.Swap(&f)
	return func() { testHookPacketFull.Store(old) }
}

// SetRecvErrHook makes every datagram receive for which f returns true
// fail with a transient error (ENOMEM, WSAENOBUFS).
func SetRecvErrHook(f func() bool) (restore func()) {
	old := testHookRecvErr.Swap(&f)
	return func() { testHookRecvErr.Store(old) }
}

// PacketErrorRun is how many receive errors in a row close a datagram
// socket.
const PacketErrorRun = packetErrorRun

// FlushPacket sends p's queued datagrams from its loop, as a writable
// edge would: a send refused by the hook leaves the socket writable, so
// no edge follows.
func FlushPacket(p *PacketConn) {
	if p.life.incref() {
		p.loop.Post(packetFlush{p})
	}
}

type packetFlush struct{ p *PacketConn }

func (t packetFlush) RunTask(*pool.Loop) {
	defer t.p.decref()
	t.p.flush()
}
