// Package echo is the echo service used by the stress binaries, the
// black-box tests and the benchmarks: every byte read is written back, in
// order, from the buffer it arrived in.
package echo

import (
	"net/netip"

	"github.com/ioreactor/reactor"
)

// Handler echoes. Reads is how many reads each connection keeps
// outstanding (at least 1; the engine's MaxReads must allow it).
type Handler struct {
	Reads int
	// OnClosed, if set, is called from OnClose with the close reason.
	OnClosed func(c *reactor.Conn, err error)
}

// OnOpen issues the first reads.
func (h *Handler) OnOpen(c *reactor.Conn) {
	for i := 0; i < max(h.Reads, 1); i++ {
		if err := c.Read(); err != nil {
			return
		}
	}
}

// OnRead writes the buffer back and issues the next read. At end of stream
// it closes gracefully: what is queued is flushed, then the peer reads EOF.
func (h *Handler) OnRead(c *reactor.Conn, b *reactor.Buffer, err error) {
	if err != nil {
		c.Close()
		return
	}
	if _, err := c.WriteBuffer(b); err != nil {
		return
	}
	c.Read()
}

// OnClose reports the reason to OnClosed.
func (h *Handler) OnClose(c *reactor.Conn, err error) {
	if h.OnClosed != nil {
		h.OnClosed(c, err)
	}
}

// Packet echoes datagrams: each goes back to its sender in the buffers it
// arrived in (WriteBufferTo; an error, the socket closing, has released
// them).
type Packet struct{}

// OnPacket answers the datagram.
func (Packet) OnPacket(p *reactor.PacketConn, b *reactor.Buffer, from netip.AddrPort) {
	p.WriteBufferTo(from, b)
}

// OnClose has nothing to do.
func (Packet) OnClose(*reactor.PacketConn, error) {}
