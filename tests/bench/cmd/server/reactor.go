package main

import (
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
)

// reactorOptions are the engine knobs the runner may pass through.
type reactorOptions struct {
	threads   int
	busyPoll  time.Duration
	bufSize   int
	shared    bool
	hop       bool   // echo from worker goroutines (hopHandler), not on the I/O thread
	backend   string // auto, epoll or uring
	ringBufs  int    // Config.RingBuffers
	ringSlots int    // Config.RingSlots
	udp       bool   // a datagram echo (ListenPacket) instead of a stream one
}

// serveReactor serves echo with the engine's own echo service, the one the
// stress binary drives: each read's buffer is handed to WriteBuffer, then
// the next read is issued. With o.hop the echo runs on worker goroutines
// instead (hopHandler); with o.udp it is a datagram echo.
func serveReactor(addr, network string, o reactorOptions) (string, error) {
	cfg := reactor.Config{
		IOThreads:    o.threads,
		BufferSize:   o.bufSize,
		BusyPoll:     o.busyPoll,
		SharedPoller: o.shared,
		ReadChain:    4,
		RingBuffers:  o.ringBufs,
		RingSlots:    o.ringSlots,
	}
	var err error
	if cfg.Backend, err = reactor.ParseBackend(o.backend); err != nil {
		return "", err
	}
	e, err := reactor.New(cfg)
	if err != nil {
		return "", err
	}
	if o.udp {
		var ph reactor.PacketHandler = echo.Packet{}
		if o.hop {
			ph = newPacketHop()
		}
		p, err := e.ListenPacket(addr, ph, reactor.PacketOptions{})
		if err != nil {
			return "", err
		}
		return p.LocalAddr().String(), nil
	}
	var h reactor.Handler = &echo.Handler{Reads: 1}
	if o.hop {
		h = newHopHandler()
	}
	if network == "unix" {
		addr = "unix:" + addr
	}
	ln, err := e.Listen(addr, h, reactor.ListenOptions{})
	if err != nil {
		return "", err
	}
	if ln.Path() != "" {
		return "unix:" + ln.Path(), nil
	}
	return ln.Addr().String(), nil
}
