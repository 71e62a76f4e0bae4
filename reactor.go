// Package reactor is a network I/O engine on raw system calls: io_uring or
// epoll on Linux, I/O completion ports on Windows. A fixed group of I/O
// threads runs the user's callbacks; reads and writes are issued
// proactor-style and complete with callbacks, in issue order. Datagram
// (UDP) sockets read continuously and deliver each datagram whole
// (Engine.ListenPacket).
//
// The packages beneath it: poller (the OS primitive), pool (I/O threads,
// timers, pooled buffers), sock (listeners, connectors, connections, datagram sockets) and
// seq (sequence numbers and the in-order list). docs/architecture.md
// describes how they fit.
package reactor

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/ioreactor/reactor/internal/lock"
	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/pool"
	"github.com/ioreactor/reactor/seq"
	"github.com/ioreactor/reactor/sock"
)

// The connection-level types live in package sock; these aliases let a
// user program name them from here.
type (
	// Conn is a stream connection.
	Conn = sock.Conn
	// Handler receives a connection's completions.
	Handler = sock.Handler
	// WriteHandler is a Handler that wants write completions.
	WriteHandler = sock.WriteHandler
	// Listener accepts connections.
	Listener = sock.Listener
	// ListenOptions tunes a listener.
	ListenOptions = sock.ListenOptions
	// DialOptions tunes an outbound connect.
	DialOptions = sock.DialOptions
	// Buffer is a pooled buffer, as handed to OnRead.
	Buffer = pool.Buffer
	// ConnOptions are a connection's filters (TLS, read timeout, the
	// user's), write limit, and TCP keep-alive and user timeout.
	ConnOptions = sock.ConnOptions
	// KeepAlive configures TCP keep-alive probes (on by default).
	KeepAlive = sock.KeepAlive
	// Filter is one layer of a connection's filter chain.
	Filter = sock.Filter
	// FlowHandler is a Handler told when its write queue runs high.
	FlowHandler = sock.FlowHandler
	// PacketConn is a datagram (UDP) socket.
	PacketConn = sock.PacketConn
	// PacketHandler receives a datagram socket's datagrams.
	PacketHandler = sock.PacketHandler
	// PacketOptions tunes a datagram socket.
	PacketOptions = sock.PacketOptions
)

// Submit runs work on the engine's blocking-work pool, off the I/O
// threads, and then done with its result on c's I/O side, in submission
// order per connection. See sock.Submit.
func Submit[T any](c *Conn, work func() T, done func(c *Conn, v T)) error {
	return sock.Submit(c, work, done)
}

// Config tunes an Engine. The zero value is a sound default.
type Config struct {
	// IOThreads is the number of I/O threads; 0 means one per CPU.
	IOThreads int
	// BufferSize is the size of pooled buffers; 0 means 16 KiB.
	BufferSize int
	// Balancer assigns connections to I/O threads; nil means round robin.
	Balancer pool.Balancer
	// SharedPoller makes all I/O threads wait on one poller, so that the
	// completions of one connection are handled by different threads (as
	// on IOCP). The default gives each thread a poller of its own.
	SharedPoller bool
	// MaxReads is how many reads a connection may have outstanding; 0
	// means 1.
	MaxReads int
	// ReadChain lets one read fill up to this many pooled buffers (readv)
	// once a connection's reads fill whole buffers; OnRead then gets the
	// head of a chain. 0 or 1 keeps one buffer per read. At most 16.
	ReadChain int
	// Linger bounds a graceful Close; 0 means 30 s.
	Linger time.Duration
	// BusyPoll makes an idle I/O thread poll without sleeping for this
	// long before it blocks; 0 disables it.
	BusyPoll time.Duration
	// Delay leaves Nagle's algorithm on (TCP_NODELAY is set by default).
	Delay bool
	// Backend chooses how the I/O threads talk to the kernel on Linux;
	// the zero value, BackendAuto, takes io_uring where the kernel allows
	// it and epoll otherwise. Windows always uses IOCP.
	Backend Backend
	// RingBuffers is how many pooled buffers each I/O thread lends its
	// io_uring for receives at first (BackendURing); 0 means
	// DefaultRingBuffers. A thread
	// doubles its loan each time a receive finds no buffer, up to
	// RingSlots.
	RingBuffers int
	// RingSlots bounds the buffers an I/O thread may lend its ring: a
	// power of two, at most 32768; 0 means RingBuffers, at least
	// DefaultRingBuffers, rounded up to a power of two. Every buffer the kernel has written stays resident, so
	// the default lends a fixed 64: they cover 1,000 busy connections per
	// thread (a receive that finds none is queued again) and keep the
	// cache warm; raise both for bursts wider than that.
	RingSlots int
	// NoSkipOnSuccess switches off FILE_SKIP_COMPLETION_PORT_ON_SUCCESS on
	// Windows. By default it is on when every TCP Winsock provider is an
	// IFS provider, and per socket when the system accepts it; then an
	// operation that completes at once is handled at once, without a
	// packet. Stats.CompletionMode says what was chosen and why.
	NoSkipOnSuccess bool
	// Logf, if set, receives the engine's few log lines (on Windows, the
	// completion mode chosen and why). nil logs nothing.
	Logf func(format string, args ...any)
	// BlockingWorkers bounds how many functions handed to Submit run at
	// once, and BlockingQueue how many more may wait; 0 means 64 and
	// 65,536. HandshakeWorkers bounds the TLS handshakes computing at
	// once (more wait their turn); a handshake waiting for its peer's
	// bytes holds none, so stalled peers cannot starve the others. 0 means
	// 64. Each pool is made on first use.
	BlockingWorkers, BlockingQueue, HandshakeWorkers int
	// WriteLimit bounds the bytes each connection holds queued for a peer
	// that does not read (ListenOptions and DialOptions may override it):
	// a write that would pass it is refused with a *sock.WriteLimitError
	// and the connection stays usable. 0 means sock.DefaultWriteLimit
	// (64 MiB), < 0 no bound.
	WriteLimit int64
	// SeqStart is the first sequence number of every connection's reads and
	// writes. Tests start it just below the top of the range to drive real
	// traffic through the wrap-around; other users leave it 0.
	SeqStart seq.Number
}

// Backend names an I/O backend.
type Backend uint8

const (
	// BackendAuto is BackendURing where the kernel allows io_uring and
	// SharedPoller is off, BackendEpoll otherwise. Engine.Backend says
	// which was taken.
	BackendAuto Backend = iota
	// BackendEpoll: readiness from epoll, then one read or write system
	// call per operation (writes go to the kernel at once from the
	// writer's goroutine when nothing is queued).
	BackendEpoll
	// BackendURing: completion-based I/O on io_uring (Linux 6.1 or later,
	// not disabled by sysctl or seccomp). Each I/O thread owns a ring;
	// reads and writes are queued on it and submitted together by the
	// thread's one io_uring_enter per loop turn, which also collects the
	// completions; receives take buffers the thread lends the kernel, so
	// an idle connection holds none. Incompatible with SharedPoller, and
	// ReadChain does not apply. New fails with an error wrapping
	// poller.ErrNotSupported where the kernel refuses io_uring.
	BackendURing
	// BackendIOCP: I/O completion ports, the one backend on Windows
	// (Engine.Backend reports it there; naming it on Linux is an error).
	BackendIOCP
)

func (b Backend) String() string {
	switch b {
	case BackendAuto:
		return "auto"
	case BackendEpoll:
		return "epoll"
	case BackendURing:
		return "uring"
	case BackendIOCP:
		return "iocp"
	}
	return fmt.Sprintf("Backend(%d)", uint8(b))
}

// MarshalText names the backend (in JSON, expvar and logs).
func (b Backend) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText reads the names MarshalText writes, so that a Config
// goes through JSON and back.
func (b *Backend) UnmarshalText(text []byte) error {
	v, err := ParseBackend(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// ParseBackend reads "auto", "epoll" or "uring" (for flags).
func ParseBackend(s string) (Backend, error) {
	for _, b := range []Backend{BackendAuto, BackendEpoll, BackendURing, BackendIOCP} {
		if b.String() == s {
			return b, nil
		}
	}
	return 0, fmt.Errorf("reactor: unknown backend %q (want auto, epoll, uring or iocp)", s)
}

// DefaultRingBuffers is Config.RingBuffers when left 0, and with RingSlots
// left 0 the most buffers an I/O thread lends its io_uring.
const DefaultRingBuffers = 64

// Engine owns the I/O threads, the buffer pool and every socket made
// through it.
type Engine struct {
	group    *pool.Group
	buffers  *pool.Buffers
	counters sock.Counters
	env      sock.Env
	backend  Backend

	mu       lock.Mutex[engineMu]
	shutdown bool
}

// engineMu is the lock class of Engine.mu (internal/lock).
type engineMu struct{}

// ErrShutdown is returned by an Engine that has been shut down.
var ErrShutdown = errors.New("reactor: engine is shut down")

// New starts an engine: its I/O threads run until Shutdown.
func New(cfg Config) (*Engine, error) {
	if err := platformSupported(); err != nil {
		return nil, err
	}
	if cfg.Backend == BackendURing && cfg.SharedPoller {
		return nil, errors.New("reactor: BackendURing gives each I/O thread its own ring; SharedPoller cannot be used with it")
	}
	e := &Engine{buffers: pool.NewBuffers(cfg.BufferSize)}
	pcfg := pool.Config{
		Threads:  cfg.IOThreads,
		Shared:   platformShared(cfg),
		Balancer: cfg.Balancer,
		BusyPoll: cfg.BusyPoll,
	}
	backend, err := platformBackend(cfg)
	if err != nil {
		return nil, err
	}
	g, err := pool.NewGroup(pcfg, newPoller(backend, cfg))
	if err != nil {
		return nil, fmt.Errorf("reactor: %w", err)
	}
	ring := backend == BackendURing
	e.backend = backend
	e.group = g
	e.env = sock.Env{
		Group:       g,
		Buffers:     e.buffers,
		Counters:    &e.counters,
		Linger:      cfg.Linger,
		MaxReads:    cfg.MaxReads,
		ReadChain:   cfg.ReadChain,
		NoDelay:     !cfg.Delay,
		Shared:      platformShared(cfg),
		Ring:        ring,
		RingBuffers: cmp.Or(cfg.RingBuffers, DefaultRingBuffers),

		WriteLimit:       cfg.WriteLimit,
		BlockingWorkers:  cfg.BlockingWorkers,
		BlockingQueue:    cfg.BlockingQueue,
		HandshakeWorkers: cfg.HandshakeWorkers,

		NoSkipOnSuccess: cfg.NoSkipOnSuccess,
		Logf:            cfg.Logf,

		ReadSeqStart:  cfg.SeqStart,
		WriteSeqStart: cfg.SeqStart,
	}
	if err := e.env.Start(); err != nil {
		g.Stop()
		e.env.Stop()
		return nil, fmt.Errorf("reactor: %w", err)
	}
	return e, nil
}

// Listen accepts connections on addr ("127.0.0.1:7007", "[::1]:0", or on
// Linux a Unix-domain socket: "unix:/run/app.sock", "unix:@name"); each
// gets h. See docs/unix.md for Unix-domain sockets.
func (e *Engine) Listen(addr string, h Handler, o ListenOptions) (*Listener, error) {
	if e.isShutdown() {
		return nil, ErrShutdown
	}
	return sock.Listen(&e.env, addr, h, o)
}

// ListenFile accepts on a listening socket made elsewhere: one systemd
// passed, or one Listener.File handed over from a process being replaced
// (docs/handoff.md). The engine takes a duplicate of f's descriptor; the
// caller still owns f. Linux only.
func (e *Engine) ListenFile(f *os.File, h Handler, o ListenOptions) (*Listener, error) {
	if e.isShutdown() {
		return nil, ErrShutdown
	}
	return sock.ListenFile(&e.env, f, h, o)
}

// Dial connects to addr ("host:port" or "unix:PATH", as Listen takes);
// see sock.Dial for how failures are reported.
func (e *Engine) Dial(addr string, h Handler, o DialOptions) (*Conn, error) {
	if e.isShutdown() {
		return nil, ErrShutdown
	}
	return sock.Dial(&e.env, addr, h, o)
}

// ListenPacket binds a datagram (UDP) socket to addr and reads from it
// continuously: each datagram goes to h.OnPacket. See docs/datagrams.md.
func (e *Engine) ListenPacket(addr string, h PacketHandler, o PacketOptions) (*PacketConn, error) {
	if e.isShutdown() {
		return nil, ErrShutdown
	}
	return sock.ListenPacket(&e.env, addr, h, o)
}

// DialPacket makes a datagram (UDP) socket connected to addr: it receives
// only what addr sends, and Write sends to it. See docs/datagrams.md.
func (e *Engine) DialPacket(addr string, h PacketHandler, o PacketOptions) (*PacketConn, error) {
	if e.isShutdown() {
		return nil, ErrShutdown
	}
	return sock.DialPacket(&e.env, addr, h, o)
}

// Backend is the backend the engine runs on (never BackendAuto).
func (e *Engine) Backend() Backend { return e.backend }

// Buffers is the engine's buffer pool.
func (e *Engine) Buffers() *pool.Buffers { return e.buffers }

func (e *Engine) isShutdown() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.shutdown
}

// Drain stops accepting (every listener is closed) and waits up to
// timeout for the stream connections to close on their own: their peers
// finish, or their handlers close them. It is how a server hands its work
// to a successor (Listener.File, ListenFile) without cutting a
// connection; Shutdown then closes whatever is left. It returns an error
// naming how many connections were still open at timeout.
func (e *Engine) Drain(timeout time.Duration) error {
	if e.isShutdown() {
		return ErrShutdown
	}
	if n := sock.Drain(&e.env, time.Now().Add(timeout)); n > 0 {
		return fmt.Errorf("reactor: connections still open after draining for %v: %d", timeout, n)
	}
	return nil
}

// Shutdown closes every listener, closes every connection gracefully,
// aborts those still flushing when timeout has passed, then stops the
// I/O threads. It returns once nothing of the engine is left running, or
// an error saying what was left.
func (e *Engine) Shutdown(timeout time.Duration) error {
	e.mu.Lock()
	if e.shutdown {
		e.mu.Unlock()
		return ErrShutdown
	}
	e.shutdown = true
	e.mu.Unlock()
	deadline := time.Now().Add(timeout)
	err := sock.CloseAll(&e.env, deadline)
	// Every connection waited for its own blocking work before it closed;
	// what is left belongs to none. Results still go to the loops, so the
	// pools stop before the group.
	if perr := e.env.StopBlocking(max(time.Until(deadline), 100*time.Millisecond)); perr != nil {
		err = errors.Join(err, perr)
	}
	if gerr := e.group.Stop(); gerr != nil {
		err = errors.Join(err, gerr)
	}
	e.env.Stop()
	return err
}

// Stats is a snapshot of the engine's counters.
type Stats struct {
	Backend       Backend // the backend the engine runs on
	ConnsOpen     int64   // connections between OnOpen and OnClose
	ConnsTotal    int64   // connections ever opened
	FDs           int64   // descriptors held by the engine (sockets; not the pollers')
	BytesIn       int64
	BytesOut      int64
	Accepts       int64
	AcceptCalls   int64 // accept system calls made, successful or not (a spin shows here)
	AcceptBackoff int64 // accept pauses for lack of descriptors or memory
	// AcceptModeRestored: a listening socket found in blocking mode (set
	// by another holder of its open file) and put back (docs/handoff.md).
	AcceptModeRestored int64
	DialFailures       int64
	// ReadsReordered counts read completions that arrived before an
	// earlier read's and waited in the in-order list.
	ReadsReordered int64
	// RecvNoBuffers counts receives that found their thread's buffer ring
	// empty and were queued again (BackendURing).
	RecvNoBuffers int64
	// RingBuffers is how many of Buffers.InUse are lent to the I/O
	// threads' buffer rings (BackendURing) rather than held by a
	// connection or the user; see BuffersOut.
	RingBuffers int64
	// RingSpares is how many of Buffers.InUse the rings keep to lend next:
	// buffers whose writes completed (an echo's), reused without a trip
	// through the pool (BackendURing).
	RingSpares int64
	// SockoptErrors counts TCP options (keep-alive, user timeout) the
	// kernel refused on a new socket; the connection went on without.
	SockoptErrors int64
	// RecvStashed counts arrivals taken by an io_uring receive before a
	// read was issued for them (held for the next Read).
	RecvStashed int64
	// RecvPaused counts io_uring receives stopped because a connection's
	// stash was full: backpressure reaching the kernel.
	RecvPaused int64
	// SendWaits counts io_uring sends that met EAGAIN and waited for a
	// writable edge; RecvRetries, receives that met it and were asked
	// again.
	SendWaits, RecvRetries int64
	// CompletionMode is, on Windows, whether skip-on-success is on and
	// why ("on: all 2 TCP providers are IFS"); empty elsewhere.
	CompletionMode string
	// SkipSockets counts sockets on which skip-on-success took effect;
	// InlineCompletions, operations handled at once without a packet;
	// DuplicatePackets, packets dropped because their operation had
	// already completed (Windows).
	SkipSockets, InlineCompletions, DuplicatePackets int64
	// Ring sums the I/O threads' io_uring counters (zero on epoll):
	// io_uring_enter calls, entries submitted, entries that waited for
	// room in a submission queue, failed cancellations.
	Ring poller.RingStats
	// TLSHandshakes and TLSFailures count TLS handshakes done and failed
	// (timeouts included); ReadTimeouts, connections closed by their read
	// timeout; WriteTimeouts, those whose queued writes stalled for their
	// write timeout.
	TLSHandshakes, TLSFailures, ReadTimeouts, WriteTimeouts int64
	// Datagram sockets: datagrams delivered and sent; received ones
	// dropped for exceeding MaxDatagram; queued ones dropped (failed after
	// their writer returned, or closed with the socket); sends that waited
	// for room; receive errors that belonged to one datagram.
	DatagramsIn, DatagramsOut, DatagramsTruncated, DatagramsDropped, DatagramsQueued, DatagramErrors int64
	// Blocking and Handshakes are the blocking-work pools' counters (zero
	// until first used).
	Blocking, Handshakes pool.BlockingStats
	Panics               int64 // callbacks that panicked
	CloseErrors          int64
	Registrations        int // sockets registered with the pollers
	TimersArmed          int // timers waiting on the loops (connect, linger, read timeouts, back-offs)
	Buffers              pool.BufferStats
	Threads              []pool.ThreadStats
	Goroutines           int
}

func completionMode(d sock.SkipDecision) string {
	if d.Reason == "" {
		return ""
	}
	if d.Skip {
		return "on: " + d.Reason
	}
	return "off: " + d.Reason
}

// loopSums adds up what each I/O thread's loop and poller count.
func (e *Engine) loopSums() (ring poller.RingStats, duplicates int64, timers int) {
	for _, l := range e.group.Loops() {
		p := l.Poller()
		r := p.RingStats()
		ring.Enters += r.Enters
		ring.Submitted += r.Submitted
		ring.Overflows += r.Overflows
		ring.Failed += r.Failed
		ring.Files += r.Files
		duplicates += int64(p.Duplicates())
		timers += l.TimersArmed()
	}
	return ring, duplicates, timers
}

// BuffersOut is how many pooled buffers connections and the user hold:
// those in use less those lent to the rings or kept as their spares. A
// leak shows here.
func (s Stats) BuffersOut() int64 { return s.Buffers.InUse - s.RingBuffers - s.RingSpares }

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	c := &e.counters
	in, out := e.env.Bytes()
	dgIn, dgOut := e.env.Datagrams()
	bw, bh := e.env.BlockingStats()
	ring, duplicates, timers := e.loopSums()
	return Stats{
		BytesIn:            in,
		BytesOut:           out,
		Backend:            e.backend,
		ConnsOpen:          c.ConnsOpen.Load(),
		ConnsTotal:         c.ConnsTotal.Load(),
		FDs:                c.FDs.Load(),
		Accepts:            c.Accepts.Load(),
		AcceptCalls:        c.AcceptCalls.Load(),
		AcceptBackoff:      c.AcceptBackoff.Load(),
		AcceptModeRestored: c.AcceptModeRestored.Load(),
		DialFailures:       c.DialFailures.Load(),
		ReadsReordered:     c.ReadsReordered.Load(),
		RecvNoBuffers:      c.RecvNoBuffers.Load(),
		RingBuffers:        c.RingBuffers.Load(),
		RingSpares:         e.env.RingSpares(),
		SockoptErrors:      c.SockoptErrors.Load(),
		RecvStashed:        c.RecvStashed.Load(),
		RecvPaused:         c.RecvPaused.Load(),
		SendWaits:          c.SendWaits.Load(),
		RecvRetries:        c.RecvRetries.Load(),
		Ring:               ring,

		CompletionMode:    completionMode(e.env.Skip()),
		SkipSockets:       c.SkipSockets.Load(),
		InlineCompletions: c.InlineCompletions.Load(),
		DuplicatePackets:  duplicates,
		TLSHandshakes:     c.TLSHandshakes.Load(),
		TLSFailures:       c.TLSFailures.Load(),
		ReadTimeouts:      c.ReadTimeouts.Load(),
		WriteTimeouts:     c.WriteTimeouts.Load(),

		DatagramsIn:        dgIn,
		DatagramsOut:       dgOut,
		DatagramsTruncated: c.DatagramsTruncated.Load(),
		DatagramsDropped:   c.DatagramsDropped.Load(),
		DatagramsQueued:    c.DatagramsQueued.Load(),
		DatagramErrors:     c.DatagramErrors.Load(),

		Blocking:      bw,
		Handshakes:    bh,
		Panics:        c.Panics.Load(),
		CloseErrors:   c.CloseErrors.Load(),
		Registrations: e.group.Table().Len(),
		TimersArmed:   timers,
		Buffers:       e.buffers.Stats(),
		Threads:       e.group.Stats(),
		Goroutines:    runtime.NumGoroutine(),
	}
}
