package main

import (
	"fmt"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/hist"
	"github.com/ioreactor/reactor/internal/procfd"
)

// Report is the outcome of a run. Durations are in nanoseconds in JSON.
type Report struct {
	Config   Config `json:"config"`
	Server   string `json:"server"`            // the address driven
	Backend  string `json:"backend,omitempty"` // the in-process engine's backend, as taken
	Duration int64  `json:"duration_ns"`
	Conns    int    `json:"conns"` // connections established
	// Messages are chunks written and wholly echoed back.
	Messages       uint64  `json:"messages"`
	MessagesPerSec float64 `json:"messages_per_sec"`
	// BytesValidated are bytes echoed back and checked against the
	// pattern; as many were sent. MBPerSec is their rate in one direction,
	// in 10^6 bytes per second.
	BytesValidated int64        `json:"bytes_validated"`
	MBPerSec       float64      `json:"mb_per_sec"`
	Latency        Latency      `json:"latency"`
	Corruptions    []Corruption `json:"corruptions"`
	ClientErrors   []string     `json:"client_errors"`
	ShutdownError  string       `json:"shutdown_error,omitempty"`
	// Datagrams is the datagram flows' outcome (-udp), nil without them.
	Datagrams *DatagramReport `json:"datagrams,omitempty"`
	// Before is counted before the engine starts (the process) and just
	// after (the engine); After once the engine is shut down.
	Before Snapshot `json:"before"`
	After  Snapshot `json:"after"`
	// Failures say why the run failed; empty if it passed.
	Failures []string `json:"failures"`
	// GoroutineDump holds the stacks when goroutines outlived the run.
	GoroutineDump string `json:"-"`
}

// Latency summarises the chunks' round trips: from the start of a chunk's
// write to the arrival of its last echoed byte.
type Latency struct {
	P50  int64 `json:"p50_ns"`
	P99  int64 `json:"p99_ns"`
	P999 int64 `json:"p999_ns"`
	Max  int64 `json:"max_ns"`
	Mean int64 `json:"mean_ns"`
}

// Snapshot is a set of counters at one point of the run.
type Snapshot struct {
	Engine  *EngineCounters `json:"engine,omitempty"` // nil when driving an external server
	Process ProcessCounters `json:"process"`
}

// EngineCounters are the engine's counters that tell a leak.
type EngineCounters struct {
	ConnsOpen        int64 `json:"conns_open"`
	ConnsTotal       int64 `json:"conns_total"`
	FDs              int64 `json:"fds"`
	Registrations    int   `json:"registrations"`
	RingFiles        int64 `json:"ring_files"` // io_uring file-table slots held
	BuffersInUse     int64 `json:"buffers_in_use"`
	BuffersAllocated int64 `json:"buffers_allocated"`
	BuffersPeak      int64 `json:"buffers_peak"`
	Panics           int64 `json:"panics"`
	TimersArmed      int   `json:"timers_armed"`
	BlockingLeft     int   `json:"blocking_left"` // blocking work running or queued
	Threads          int   `json:"threads"`
	DatagramsIn      int64 `json:"datagrams_in"`
	DatagramsOut     int64 `json:"datagrams_out"`
	DatagramsDropped int64 `json:"datagrams_dropped"` // queued sends dropped (failed later, or closed)
}

// ProcessCounters are the whole process's, client included.
type ProcessCounters struct {
	FDs            *int   `json:"fds"` // open descriptors; nil if not countable here
	FDsUnavailable string `json:"fds_unavailable,omitempty"`
	Goroutines     int    `json:"goroutines"`
}

func takeEngine(e *reactor.Engine) EngineCounters {
	s := e.Stats()
	return EngineCounters{
		ConnsOpen: s.ConnsOpen, ConnsTotal: s.ConnsTotal, FDs: s.FDs,
		Registrations: s.Registrations, RingFiles: s.Ring.Files, Panics: s.Panics,
		BuffersInUse: s.Buffers.InUse, BuffersAllocated: s.Buffers.Allocated, BuffersPeak: s.Buffers.Peak,
		TimersArmed: s.TimersArmed,
		BlockingLeft: s.Blocking.Running + s.Blocking.Queued + s.Blocking.Parked +
			s.Handshakes.Running + s.Handshakes.Queued + s.Handshakes.Parked,
		Threads:     len(s.Threads),
		DatagramsIn: s.DatagramsIn, DatagramsOut: s.DatagramsOut, DatagramsDropped: s.DatagramsDropped,
	}
}

// buffersBound is the most buffers an echo run may hold at once: per
// connection, its reads (each up to ReadChain buffers) and the echo of
// what the client has in flight (its window) queued for writing, one
// buffer of slack for a partly filled one; per thread on io_uring, the
// ring's loan (the run leaves RingSlots at its default) and as many
// spares, buffers of completed writes kept to lend next.
// A run past it is holding buffers it should have released, even if it
// releases them by the end.
func (r *Report) buffersBound(threads int) int64 {
	c := r.Config
	size := max(c.BufferSize, 1)
	perConn := max(c.Reads, 1)*max(c.ReadChain, 1) + (c.Window+size-1)/size + 1
	loan := 0
	if r.Backend == reactor.BackendURing.String() {
		loan = 2 * reactor.DefaultRingBuffers
	}
	// The datagram echo: its receive slots (8, each a chain for the
	// largest datagram), and an echo queued per datagram in flight.
	chain := (c.UDPMaxSize + size - 1) / size
	udp := 0
	if c.UDPFlows > 0 {
		udp = 8*chain + c.UDPFlows*c.UDPWindow*chain
	}
	return int64(c.Conns*perConn + threads*loan + udp)
}

func takeProcess() ProcessCounters {
	p := ProcessCounters{Goroutines: runtime.NumGoroutine()}
	if n, err := procfd.Count(); err != nil {
		p.FDsUnavailable = err.Error()
	} else {
		p.FDs = &n
	}
	return p
}

// settledTo says whether nothing is left above base.
func (p ProcessCounters) settledTo(base ProcessCounters) bool {
	fdsOK := p.FDs == nil || base.FDs == nil || *p.FDs <= *base.FDs
	return fdsOK && p.Goroutines <= base.Goroutines
}

// collect adds up the clients once their goroutines have returned.
func (r *Report) collect(clients []*client) {
	var h hist.Histogram
	for _, c := range clients {
		h.Merge(&c.hist)
		r.Messages += c.messages
		r.BytesValidated += c.received
		if c.corrupt != nil {
			r.Corruptions = append(r.Corruptions, *c.corrupt)
		}
		if c.err != nil {
			r.ClientErrors = append(r.ClientErrors, c.err.Error())
		}
		if c.closeErr != nil {
			r.ClientErrors = append(r.ClientErrors, fmt.Sprintf("conn %d: close: %v", c.id, c.closeErr))
		}
	}
	secs := float64(r.Duration) / 1e9
	if r.Datagrams != nil {
		r.Datagrams.PerSec = float64(r.Datagrams.Echoed) / secs
	}
	r.MessagesPerSec = float64(r.Messages) / secs
	r.MBPerSec = float64(r.BytesValidated) / 1e6 / secs
	r.Latency = Latency{
		P50: int64(h.Quantile(0.5)), P99: int64(h.Quantile(0.99)), P999: int64(h.Quantile(0.999)),
		Max: int64(h.Max()), Mean: int64(h.Mean()),
	}
}

// judge fills Failures: corruptions, client errors, a failed shutdown and
// anything the run left behind.
func (r *Report) judge() {
	fail := func(format string, args ...any) { r.Failures = append(r.Failures, fmt.Sprintf(format, args...)) }
	if n := len(r.Corruptions); n > 0 {
		fail("%d corrupted connection(s)", n)
	}
	if n := len(r.ClientErrors); n > 0 {
		fail("%d client error(s)", n)
	}
	if r.BytesValidated == 0 && r.Conns > 0 {
		fail("no byte was echoed")
	}
	if r.ShutdownError != "" {
		fail("engine shutdown: %s", r.ShutdownError)
	}
	if d := r.Datagrams; d != nil {
		if d.Corrupt > 0 || d.Duplicates > 0 {
			fail("%d datagram answer(s) changed or matching none sent, %d answered twice", d.Corrupt, d.Duplicates)
		}
		if n := len(d.Errors); n > 0 {
			fail("%d datagram flow error(s)", n)
		}
		if d.Echoed == 0 && d.Flows > 0 {
			fail("no datagram was echoed")
		}
		// On loopback a datagram vanishes only where a receive buffer
		// overflowed, which the kernel counts; a loss it did not count is
		// the engine's. (Late answers were lost only to the wait.)
		if d.KernelDrops != nil && d.Lost > d.Late+*d.KernelDrops {
			fail("%d datagrams lost (%d of them answered late), the kernel's receive buffers dropped %d: the rest vanished in the engine", d.Lost, d.Late, *d.KernelDrops)
		}
	}
	if a := r.After.Engine; a != nil {
		if a.ConnsOpen != 0 {
			fail("leak: %d connections open after shutdown", a.ConnsOpen)
		}
		if a.BuffersInUse != 0 {
			fail("leak: %d buffers in use after shutdown", a.BuffersInUse)
		}
		if a.FDs != 0 {
			fail("leak: the engine holds %d descriptors after shutdown", a.FDs)
		}
		if a.Registrations != 0 {
			fail("leak: %d sockets still registered with the pollers after shutdown", a.Registrations)
		}
		if a.RingFiles != 0 {
			fail("leak: %d io_uring file-table slots still held after shutdown (each holds a socket open)", a.RingFiles)
		}
		if a.Panics != 0 {
			fail("%d engine callbacks panicked", a.Panics)
		}
		if a.TimersArmed != 0 {
			fail("leak: %d timers armed after shutdown", a.TimersArmed)
		}
		if a.BlockingLeft != 0 {
			fail("leak: %d blocking tasks running or queued after shutdown", a.BlockingLeft)
		}
		if bound := r.buffersBound(a.Threads); a.BuffersPeak > bound {
			fail("bound: %d buffers in use at the peak, more than the %d this run can need", a.BuffersPeak, bound)
		}
	}
	b, a := r.Before.Process, r.After.Process
	if a.FDs != nil && b.FDs != nil && *a.FDs > *b.FDs {
		fail("leak: %d open descriptors in the process, %d before the engine started", *a.FDs, *b.FDs)
	}
	if a.Goroutines > b.Goroutines {
		fail("leak: %d goroutines, %d before the engine started", a.Goroutines, b.Goroutines)
		var sb strings.Builder
		if err := pprof.Lookup("goroutine").WriteTo(&sb, 1); err != nil {
			fmt.Fprintf(&sb, "goroutine dump failed: %v\n", err)
		}
		r.GoroutineDump = sb.String()
	}
}

// OK says whether the run passed.
func (r *Report) OK() bool { return len(r.Failures) == 0 }

// Verdict is the last line printed: PASS, or FAIL with the reasons.
func (r *Report) Verdict() string {
	if r.OK() {
		return "PASS"
	}
	return "FAIL: " + strings.Join(r.Failures, "; ")
}
