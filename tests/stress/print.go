package main

import (
	"fmt"
	"io"
	"strconv"
	"time"
)

// maxListed bounds the corruptions and client errors printed one by one;
// the JSON report has them all.
const maxListed = 10

// print writes the report for a human, all but the verdict.
func (r *Report) print(w io.Writer) {
	c := r.Config
	if c.Addr != "" {
		fmt.Fprintf(w, "server            external, %s\n", r.Server)
	} else {
		threads := strconv.Itoa(c.IOThreads)
		if c.IOThreads == 0 {
			threads = "one per CPU"
		}
		fmt.Fprintf(w, "server            in-process engine on %s (backend %s, io-threads %s, buffer-size %d, shared %v, reads %d, read-chain %d)\n",
			r.Server, r.Backend, threads, c.BufferSize, c.Shared, c.Reads, c.ReadChain)
	}
	fmt.Fprintf(w, "load              %d connections, chunks of %d-%d bytes, window %d, seed %d\n",
		c.Conns, c.MinSize, c.MaxSize, c.Window, c.Seed)
	fmt.Fprintf(w, "duration          %v (traffic and drain)\n", time.Duration(r.Duration).Round(time.Millisecond))
	fmt.Fprintf(w, "connections       %d established\n", r.Conns)
	fmt.Fprintf(w, "messages          %d chunks echoed whole (%.0f/s)\n", r.Messages, r.MessagesPerSec)
	fmt.Fprintf(w, "bytes validated   %d echoed and checked (%.1f MB/s each way, 1 MB = 10^6 bytes)\n",
		r.BytesValidated, r.MBPerSec)
	l := r.Latency
	fmt.Fprintf(w, "latency           p50 %v  p99 %v  p99.9 %v  max %v  mean %v\n",
		dur(l.P50), dur(l.P99), dur(l.P999), dur(l.Max), dur(l.Mean))
	fmt.Fprintf(w, "corruptions       %d\n", len(r.Corruptions))
	for i, x := range r.Corruptions[:min(len(r.Corruptions), maxListed)] {
		fmt.Fprintf(w, "  [%d] conn %d at offset %d: expected %d, got %d\n", i, x.Conn, x.Offset, x.Expected, x.Got)
	}
	fmt.Fprintf(w, "client errors     %d\n", len(r.ClientErrors))
	for _, e := range r.ClientErrors[:min(len(r.ClientErrors), maxListed)] {
		fmt.Fprintf(w, "  %s\n", e)
	}
	if r.ShutdownError != "" {
		fmt.Fprintf(w, "shutdown error    %s\n", r.ShutdownError)
	}
	if d := r.Datagrams; d != nil {
		drops := "unknown here"
		if d.KernelDrops != nil {
			drops = strconv.FormatUint(*d.KernelDrops, 10)
		}
		fmt.Fprintf(w, "datagrams         %d flows, %d-%d bytes, window %d: %d sent, %d echoed whole (%.0f/s), %d lost (%d answered late; receive buffers dropped %s), %d duplicated, %d changed\n",
			d.Flows, datagramHeader, c.UDPMaxSize, c.UDPWindow, d.Sent, d.Echoed, d.PerSec, d.Lost, d.Late, drops, d.Duplicates, d.Corrupt)
		l := d.Latency
		fmt.Fprintf(w, "datagram latency  p50 %v  p99 %v  p99.9 %v  max %v  mean %v\n",
			dur(l.P50), dur(l.P99), dur(l.P999), dur(l.Max), dur(l.Mean))
		for _, e := range d.Errors[:min(len(d.Errors), maxListed)] {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}

	row := func(name, before, after string) {
		fmt.Fprintf(w, "%-26s %12s %12s\n", name, before, after)
	}
	num := func(v int64) string { return strconv.FormatInt(v, 10) }
	row("counters", "before", "after")
	if b, a := r.Before.Engine, r.After.Engine; b != nil && a != nil {
		row("engine connections open", num(b.ConnsOpen), num(a.ConnsOpen))
		row("engine connections total", num(b.ConnsTotal), num(a.ConnsTotal))
		row("engine buffers in use", num(b.BuffersInUse), num(a.BuffersInUse))
		row("engine buffers allocated", num(b.BuffersAllocated), num(a.BuffersAllocated))
		row("engine buffers peak", num(b.BuffersPeak), num(a.BuffersPeak))
		row("  bound on the peak", "", num(r.buffersBound(a.Threads)))
		row("engine fds", num(b.FDs), num(a.FDs))
		row("engine registrations", num(int64(b.Registrations)), num(int64(a.Registrations)))
		row("engine ring file slots", num(b.RingFiles), num(a.RingFiles))
		row("engine callback panics", num(b.Panics), num(a.Panics))
		row("engine timers armed", num(int64(b.TimersArmed)), num(int64(a.TimersArmed)))
		row("engine blocking work left", num(int64(b.BlockingLeft)), num(int64(a.BlockingLeft)))
		if r.Datagrams != nil {
			row("engine datagrams in", num(b.DatagramsIn), num(a.DatagramsIn))
			row("engine datagrams out", num(b.DatagramsOut), num(a.DatagramsOut))
			row("engine datagrams dropped", num(b.DatagramsDropped), num(a.DatagramsDropped))
		}
	}
	bp, ap := r.Before.Process, r.After.Process
	row("process fds", fdCount(bp), fdCount(ap))
	row("goroutines", num(int64(bp.Goroutines)), num(int64(ap.Goroutines)))
}

func dur(ns int64) time.Duration {
	d := time.Duration(ns)
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Microsecond)
	default:
		return d
	}
}

func fdCount(p ProcessCounters) string {
	if p.FDs == nil {
		return "unavailable (" + p.FDsUnavailable + ")"
	}
	return strconv.Itoa(*p.FDs)
}
