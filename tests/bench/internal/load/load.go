// Package load is the benchmark's load client: one OS thread drives every
// connection through the engine's poller (package poller): an io_uring
// (the default where the kernel has one) or epoll with non-blocking
// sockets and edge triggering.
//
// A goroutine per connection would spend most of a small machine's second
// core on the client itself (scheduling, netpoller round trips), and the
// servers' differences would drown in it. One locked thread that issues
// one read and one write system call per reply (DriverEpoll) costs about
// as much as the server it drives, which was enough while the servers
// paid the same two calls; against a server that batches its I/O it is
// the client that runs out of CPU first, and every server then shows the
// client's rate. The ring driver (DriverURing) submits every send and
// collects every receive of a loop turn in one io_uring_enter, through the
// engine's own poller (package poller), and costs less CPU per message
// than the epoll driver (measured side by side, see docs/performance.md).
// Result.ClientCPU says whether the client still limited a run.
//
// Every echoed byte is checked. Ping-pong messages carry the connection's
// id and a counter in their first 16 bytes, then a slice of a shared
// pattern that starts at an offset of the connection's own; the reply must
// equal what was sent. A streaming connection's byte at stream offset k is
// pattern[(k+id) % patternPeriod].
//
// Linux only: the package speaks epoll and io_uring, and reads /proc.
package load

import (
	"errors"
	"fmt"
	"time"
)

// Mode is a workload's shape.
type Mode string

const (
	// PingPong keeps InFlight messages of Size bytes in flight on each
	// connection: a reply, once whole and checked, sends the next message.
	PingPong Mode = "pingpong"
	// Stream writes Size-byte chunks continuously on each connection,
	// keeping at most StreamWindow bytes unechoed, and reads the echo.
	Stream Mode = "stream"
	// Idle opens IdleConns connections that echo one small message each and
	// then stay open, while Conns connections do ping-pong as in PingPong.
	// The server's resident memory is read before the idle connections
	// open and at the end of the window.
	Idle Mode = "idle"
)

// IdleMessageSize is the one message an idle connection sends.
const IdleMessageSize = 32

// headerSize is the id and counter at the front of a ping-pong message.
const headerSize = 16

// Driver is how the client talks to the kernel.
type Driver string

const (
	// DriverAuto is DriverURing where the kernel has io_uring, else
	// DriverEpoll.
	DriverAuto Driver = ""
	// DriverURing: receives and sends are queued on one io_uring and
	// submitted, with every completion collected, by one io_uring_enter
	// per loop turn (multishot receives into provided buffers, one send
	// in flight per connection).
	DriverURing Driver = "uring"
	// DriverEpoll: edge-triggered epoll, and a read and a write system
	// call per reply.
	DriverEpoll Driver = "epoll"
)

// Config describes one run.
type Config struct {
	Addr   string // the server, an IPv4 literal and port ("127.0.0.1:7007"), or "unix:PATH"
	Mode   Mode
	Driver Driver
	// Datagram makes every connection a connected UDP socket (ping-pong
	// only): each message is one datagram, and its reply one datagram.
	// On loopback with the replies awaited none is lost; one that were
	// would stall its socket, which slowest_share would show.
	Datagram  bool
	Conns     int // connections carrying the measured traffic
	Size      int // message size (ping-pong, idle's active connections) or write size (stream)
	InFlight  int // ping-pong messages in flight per connection; 0 means 1
	IdleConns int // Idle mode: connections that echo once, then wait

	Warmup time.Duration // traffic before the window, not counted
	Window time.Duration // the measured time
	// WindowAt, if not zero, is the earliest the window may start: the
	// warm-up lasts at least Warmup and until WindowAt, so that clients
	// started together (paired runs) measure the same seconds whatever
	// their set-up took. Idle mode opens its idle connections after the
	// warm-up, so its window starts later still.
	WindowAt time.Time

	// SetupTimeout bounds opening the connections (idle ones included);
	// 0 means 60 s.
	SetupTimeout time.Duration
	// MaxConnecting bounds the connections being opened at once, so that a
	// server's accept queue never overflows (an overflow costs a SYN
	// retransmit, a second); 0 means 128.
	MaxConnecting int
	// StreamWindow is how many bytes a streaming connection may have
	// written and not yet read back; 0 means 1 MiB.
	StreamWindow int

	// ServerPID, if positive, is the process whose CPU time is read at the
	// window's edges and whose resident memory Idle mode reads.
	ServerPID int
}

// Result is what one run measured. Counts cover the window only.
type Result struct {
	Mode     Mode          `json:"mode"`
	Driver   Driver        `json:"driver"`     // the driver that ran (never DriverAuto)
	Elapsed  time.Duration `json:"elapsed_ns"` // the window as measured
	Messages uint64        `json:"messages"`   // replies (stream: Size chunks) echoed whole and checked
	Bytes    int64         `json:"bytes"`      // bytes echoed and checked

	// WindowStart is when the window started, by the wall clock, to
	// compare with another client's (paired runs).
	WindowStart time.Time `json:"window_start"`

	P50  time.Duration `json:"p50_ns"` // latency from write to whole reply
	P99  time.Duration `json:"p99_ns"`
	Max  time.Duration `json:"max_ns"`
	Mean time.Duration `json:"mean_ns"`

	// ServerCPUTicks is the server's utime+stime over the window, in clock
	// ticks (/proc/PID/stat); -1 without ServerPID.
	ServerCPUTicks int64 `json:"server_cpu_ticks"`
	// ClientCPU is this process's user+system time over the window.
	ClientCPU time.Duration `json:"client_cpu_ns"`
	// ClientSleeps is how often the client blocked waiting for the server
	// over the window: voluntary context switches of the client's thread
	// (getrusage RUSAGE_THREAD; the runtime's other threads are not
	// counted). Each costs the client a sleep and a wake-up, and the
	// server the wake: a server whose replies arrive in bursts lets the
	// client sleep less per message, which is why servers differ in
	// messages/s even when the client is at 100% of its CPU.
	ClientSleeps int64 `json:"client_sleeps"`

	// RecvNoBuffers is how many receives over the window found the ring's
	// provided buffers all in use (ENOBUFS) and had to be re-armed: more
	// than a few say the buffer ring is too small (DriverURing only).
	RecvNoBuffers int64 `json:"recv_no_buffers"`

	// SlowestShare is the fairness of the server: the active connection
	// that got the least echoed over the window (replies; stream: bytes),
	// as a fraction of the mean over active connections. 1 is perfectly
	// fair; near 0, some connection starved.
	SlowestShare float64 `json:"slowest_share"`

	// Idle mode: the server's VmRSS before the idle connections opened
	// and at the window's end, and how many idle connections were open.
	RSSBeforeKiB int64 `json:"rss_before_kib"`
	RSSAfterKiB  int64 `json:"rss_after_kib"`
	IdleOpen     int   `json:"idle_open"`

	Setup time.Duration `json:"setup_ns"` // opening every connection, idle ones included
}

// MessagesPerSec is the rate of checked replies over the window.
func (r *Result) MessagesPerSec() float64 { return perSec(float64(r.Messages), r.Elapsed) }

// MBPerSec is the echoed payload rate, 10^6 bytes per second, one way.
func (r *Result) MBPerSec() float64 { return perSec(float64(r.Bytes)/1e6, r.Elapsed) }

// ClientCPUPercent is the client's CPU time as a share of one core.
func (r *Result) ClientCPUPercent() float64 {
	return perSec(100*r.ClientCPU.Seconds(), r.Elapsed)
}

func perSec(v float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return v / d.Seconds()
}

// withDefaults fills the zero knobs and rejects what cannot run.
func (c Config) withDefaults() (Config, error) {
	if c.InFlight == 0 {
		c.InFlight = 1
	}
	if c.SetupTimeout == 0 {
		c.SetupTimeout = 60 * time.Second
	}
	if c.MaxConnecting == 0 {
		c.MaxConnecting = 128
	}
	if c.StreamWindow == 0 {
		c.StreamWindow = 1 << 20
	}
	var errs []error
	switch c.Mode {
	case PingPong, Idle:
		if c.Size < headerSize {
			errs = append(errs, fmt.Errorf("message size %d is below the %d-byte header", c.Size, headerSize))
		}
	case Stream:
		if c.Size <= 0 {
			errs = append(errs, fmt.Errorf("write size %d", c.Size))
		}
		if c.StreamWindow < c.Size {
			errs = append(errs, fmt.Errorf("stream window %d is below the write size %d", c.StreamWindow, c.Size))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown mode %q", c.Mode))
	}
	switch c.Driver {
	case DriverAuto, DriverURing, DriverEpoll:
	default:
		errs = append(errs, fmt.Errorf("unknown driver %q: want uring, epoll or empty (uring where the kernel has it)", c.Driver))
	}
	if c.Conns < 0 || c.IdleConns < 0 || c.Conns+c.IdleConns == 0 {
		errs = append(errs, fmt.Errorf("%d connections and %d idle ones", c.Conns, c.IdleConns))
	}
	if c.Datagram && c.Mode != PingPong {
		errs = append(errs, errors.New("datagrams are for ping-pong mode"))
	}
	if c.Datagram && c.Size*c.InFlight > 1<<16 {
		errs = append(errs, errors.New("datagram ping-pong: size × in-flight must fit one 64 KiB read"))
	}
	if c.Mode != Idle && c.IdleConns > 0 {
		errs = append(errs, errors.New("idle connections are for idle mode"))
	}
	if c.InFlight < 1 || c.MaxConnecting < 1 {
		errs = append(errs, errors.New("in-flight messages and connecting bound must be ≥ 1"))
	}
	if c.Warmup < 0 || c.Window <= 0 || c.SetupTimeout < 0 {
		errs = append(errs, errors.New("warm-up must be ≥ 0, window and set-up timeout > 0"))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("load: %w", err)
	}
	return c, nil
}
