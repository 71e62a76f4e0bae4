package sock

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ioreactor/reactor/pool"
	"github.com/ioreactor/reactor/seq"
)

// Env is what sockets need from the engine that owns them.
type Env struct {
	Group    *pool.Group
	Buffers  *pool.Buffers
	Counters *Counters
	// Linger bounds a graceful Close: writes not flushed by then are
	// dropped and the connection is aborted. 0 means DefaultLinger.
	Linger time.Duration
	// MaxReads is how many reads a connection may have outstanding;
	// 0 means 1.
	MaxReads int
	// ReadChain is how many pooled buffers one read may fill (readv):
	// after a read that filled everything it was given, the next read of
	// that connection is offered a chain of this many buffers, so a fast
	// stream costs one system call per chain instead of per buffer. OnRead
	// then receives the head of a chain (Next() != nil). 0 or 1: never.
	ReadChain int
	// NoDelay sets TCP_NODELAY on every connection (true in the engine's
	// default configuration: an echo engine should not wait for Nagle).
	NoDelay bool
	// Shared says all I/O threads wait on one loop (Config.SharedPoller):
	// the completions of one connection are then spread over threads.
	Shared bool
	// Ring says the loops' pollers are io_uring instances with buffer
	// rings (poller.NewURing) and connections use completion mode: reads
	// and writes are ring operations, with no system call of their own.
	// Incompatible with Shared; ReadChain does not apply.
	Ring bool
	// RingBuffers is how many buffers each loop lends its ring at first
	// (completion mode); the loop doubles them each time a receive finds
	// none, up to the ring's slots. 0 means 1.
	RingBuffers int
	rings       []*recvRing // by loop ID, in completion mode
	traffic     []traffic   // by loop ID: bytes in and out

	// NoSkipOnSuccess switches FILE_SKIP_COMPLETION_PORT_ON_SUCCESS off
	// (Windows). It is on by default where every TCP provider is IFS.
	NoSkipOnSuccess bool
	skip            SkipDecision // the engine's decision (Windows), made by Start
	// Logf, if set, receives the engine's few log lines (the completion
	// mode chosen and why).
	Logf func(format string, args ...any)
	// WriteLimit bounds each connection's queued bytes unless its
	// listener or connector says otherwise: 0 means DefaultWriteLimit,
	// < 0 no bound.
	WriteLimit int64
	// BlockingWorkers and BlockingQueue size the pool that runs the
	// blocking work connections hand off (Submit); HandshakeWorkers sizes
	// the one that runs TLS handshakes, apart so that neither can starve
	// the other. 0 means pool.DefaultBlockingWorkers and
	// pool.DefaultBlockingQueue. Each pool is made on first use.
	BlockingWorkers, BlockingQueue, HandshakeWorkers int
	pools                                            blockingPools
	// ReadSeqStart and WriteSeqStart are the first stamps of every
	// connection's reads and writes. Tests set them near the top of the
	// range to drive real traffic through the wrap-around.
	ReadSeqStart, WriteSeqStart seq.Number
}

// Start prepares what the sockets need from the group's loops: in
// completion mode on Linux, each loop's buffer ring is filled; on Windows,
// the completion mode is chosen. Call it once, after the group is made and
// before any socket.
func (e *Env) Start() error {
	e.traffic = make([]traffic, len(e.Group.Loops()))
	if err := e.startPlatform(); err != nil {
		return err
	}
	if !e.Ring {
		return nil
	}
	if e.Shared {
		return fmt.Errorf("sock: completion mode (Ring) cannot share one poller between threads")
	}
	return e.startRings()
}

// SkipDecision is the IOCP completion mode an engine chose, and why.
type SkipDecision struct {
	Skip   bool   // skip-on-success is on
	Reason string // e.g. "all 2 TCP providers are IFS", or what stopped it
}

// Skip reports the completion mode chosen by Start (Windows; the zero
// value elsewhere).
func (e *Env) Skip() SkipDecision { return e.skip }

func (e *Env) logf(format string, args ...any) {
	if e.Logf != nil {
		e.Logf(format, args...)
	}
}

// Stop releases what Start took. Call it after the group has stopped.
func (e *Env) Stop() {
	if e.Ring {
		e.stopRings()
	}
}

// DefaultLinger is the default bound on a graceful close.
const DefaultLinger = 30 * time.Second

func (e *Env) linger() time.Duration {
	if e.Linger > 0 {
		return e.Linger
	}
	return DefaultLinger
}

func (e *Env) readChain() int {
	return min(max(e.ReadChain, 1), maxReadChain)
}

// maxReadChain caps ReadChain (and the iovec array of a read).
const maxReadChain = 16

func (e *Env) maxReads() int {
	if e.MaxReads > 0 {
		return e.MaxReads
	}
	return 1
}

// traffic counts one loop's bytes. The counters are updated for every
// read and write, so each loop has its own, a cache line apart: one shared
// pair written by every I/O thread would move between cores on every
// message.
type traffic struct {
	in, out               atomic.Int64
	packetsIn, packetsOut atomic.Int64 // datagrams delivered and sent, with their bytes in in and out
	_                     [32]byte
}

func (e *Env) addIn(l *pool.Loop, n int)  { e.traffic[l.ID()].in.Add(int64(n)) }
func (e *Env) addOut(l *pool.Loop, n int) { e.traffic[l.ID()].out.Add(int64(n)) }

// addPacketIn counts one datagram of n bytes delivered; addPacketsOut,
// count datagrams of n bytes in all sent.
func (e *Env) addPacketIn(l *pool.Loop, n int) {
	t := &e.traffic[l.ID()]
	t.packetsIn.Add(1)
	t.in.Add(int64(n))
}

func (e *Env) addPacketsOut(l *pool.Loop, count, n int) {
	t := &e.traffic[l.ID()]
	t.packetsOut.Add(int64(count))
	t.out.Add(int64(n))
}

// Datagrams sums the datagrams delivered and sent so far.
func (e *Env) Datagrams() (in, out int64) {
	for i := range e.traffic {
		in += e.traffic[i].packetsIn.Load()
		out += e.traffic[i].packetsOut.Load()
	}
	return in, out
}

// Bytes sums the bytes read from and written to connections so far.
func (e *Env) Bytes() (in, out int64) {
	for i := range e.traffic {
		in += e.traffic[i].in.Load()
		out += e.traffic[i].out.Load()
	}
	return in, out
}

// Counters are the sockets' resource counters. Fields are updated
// atomically and may be read at any time.
type Counters struct {
	ConnsOpen     atomic.Int64 // connections between OnOpen and OnClose
	ConnsTotal    atomic.Int64 // connections ever opened
	FDs           atomic.Int64 // descriptors the engine holds open
	Accepts       atomic.Int64 // connections accepted
	AcceptCalls   atomic.Int64 // accept4 (AcceptEx) calls made, successful or not: a spin shows here
	AcceptBackoff atomic.Int64 // times accept paused for lack of descriptors or memory
	// AcceptModeRestored counts the times a listening socket was found in
	// blocking mode, which another holder of its open file set (os/exec
	// does, passing it to a child), and put back before accepting.
	AcceptModeRestored atomic.Int64
	Panics             atomic.Int64 // callbacks that panicked
	CloseErrors        atomic.Int64 // close(2) or epoll removal that reported an error
	DialFailures       atomic.Int64 // outbound connects that failed
	// ReadsReordered counts read completions that reached the in-order
	// list before an earlier read's: proof that the reordering path ran.
	ReadsReordered atomic.Int64
	// RecvNoBuffers counts receives that found the loop's buffer ring
	// empty and were queued again (completion mode).
	RecvNoBuffers atomic.Int64
	// RingBuffers is how many pooled buffers are lent to the loops'
	// buffer rings (completion mode): in use, but held by no connection.
	// The rings' spares are counted apart (RingSpares).
	RingBuffers atomic.Int64
	// SockoptErrors counts TCP options (keep-alive, user timeout) the
	// kernel refused on a new socket, which then went on without them.
	SockoptErrors atomic.Int64
	// RecvStashed counts arrivals an io_uring receive took before a read
	// was issued for them, held for the next Read.
	RecvStashed atomic.Int64
	// RecvPaused counts multishot receives stopped because their
	// connection's stash was full (its reader had stopped reading).
	RecvPaused atomic.Int64
	// SkipSockets counts sockets on which skip-on-success took effect
	// (Windows); InlineCompletions counts operations that completed at
	// once and were handled without a packet.
	SkipSockets       atomic.Int64
	InlineCompletions atomic.Int64
	// SendWaits counts io_uring sends that met EAGAIN and waited for a
	// writable edge; RecvRetries, receives that met it and were asked
	// again (completion mode).
	SendWaits   atomic.Int64
	RecvRetries atomic.Int64
	// TLSHandshakes and TLSFailures count TLS handshakes that completed
	// and that failed (or timed out); ReadTimeouts, connections closed by
	// their read timeout.
	TLSHandshakes atomic.Int64
	TLSFailures   atomic.Int64
	ReadTimeouts  atomic.Int64
	// WriteTimeouts counts connections closed because their queued
	// writes made no progress for their WriteTimeout.
	WriteTimeouts atomic.Int64
	// Datagram sockets (those delivered and sent are counted per loop,
	// beside the bytes: Env.Datagrams): received ones dropped for
	// exceeding MaxDatagram; queued ones dropped (a send that failed after the writer returned, or a
	// close); sends that waited in the queue (a full send buffer; on
	// Windows, a send in flight); receive errors that belonged to one
	// datagram.
	DatagramsTruncated atomic.Int64
	DatagramsDropped   atomic.Int64
	DatagramsQueued    atomic.Int64
	DatagramErrors     atomic.Int64
}
