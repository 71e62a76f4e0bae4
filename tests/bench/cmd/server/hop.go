package main

import (
	"net/netip"
	"runtime"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
)

// hopHandler is the echo service with the goroutine hop other engines
// force on their users: OnRead runs on the I/O thread but only hands the
// completion to a worker goroutine, which echoes it (WriteBuffer, then the
// next Read) as echo.Handler does. It measures what running callbacks on
// the I/O thread saves.
type hopHandler struct {
	echo.Handler
	work chan hopItem
}

type hopItem struct {
	c   *reactor.Conn
	b   *reactor.Buffer
	err error
}

// hopQueue bounds the completions waiting for a worker; the I/O thread
// waits when it is full. With one read outstanding per connection it holds
// at most one per connection.
const hopQueue = 1024

// newHopHandler starts GOMAXPROCS workers on one shared channel: a small
// fixed pool rather than a goroutine per connection.
func newHopHandler() *hopHandler {
	h := &hopHandler{Handler: echo.Handler{Reads: 1}, work: make(chan hopItem, hopQueue)}
	for range runtime.GOMAXPROCS(0) {
		go func() {
			for it := range h.work {
				h.Handler.OnRead(it.c, it.b, it.err)
			}
		}()
	}
	return h
}

// OnRead hands the completion over; the worker owns the buffer from here.
func (h *hopHandler) OnRead(c *reactor.Conn, b *reactor.Buffer, err error) {
	h.work <- hopItem{c, b, err}
}

// packetHop is hopHandler for datagrams: OnPacket hands the datagram to a
// worker goroutine, which answers it.
type packetHop struct {
	work chan packetHopItem
}

type packetHopItem struct {
	p    *reactor.PacketConn
	b    *reactor.Buffer
	from netip.AddrPort
}

func newPacketHop() *packetHop {
	h := &packetHop{work: make(chan packetHopItem, hopQueue)}
	for range runtime.GOMAXPROCS(0) {
		go func() {
			for it := range h.work {
				it.p.WriteBufferTo(it.from, it.b)
			}
		}()
	}
	return h
}

func (h *packetHop) OnPacket(p *reactor.PacketConn, b *reactor.Buffer, from netip.AddrPort) {
	h.work <- packetHopItem{p, b, from}
}

func (*packetHop) OnClose(*reactor.PacketConn, error) {}
