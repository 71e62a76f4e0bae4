// Command server is one echo server of the peer benchmark: the same echo
// service on reactor, gnet v2, nbio or Go's net package, chosen by -engine,
// so that each runs in a process of its own whose CPU time and memory the
// runner (cmd/compare) can read from /proc. -engine reactor-hop is reactor
// with the echo moved off the I/O thread onto worker goroutines (hop.go),
// to measure what dispatching callbacks on the I/O thread saves.
//
// Every engine is given the same number of event loops (-io-threads, 1 by
// default). Once it accepts connections it prints one line, "listening on
// ADDR", with the real address, so -addr 127.0.0.1:0 works from a script.
// SIGINT or SIGTERM ends it at once: a benchmark server has nothing to
// flush that the client still wants.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

func main() {
	engine := flag.String("engine", "reactor", "reactor, reactor-hop (echo on worker goroutines), gnet, nbio or net")
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on (port 0 picks one)")
	threads := flag.Int("io-threads", 1, "event loops / I/O threads (net: ignored, it runs a goroutine per connection)")
	busyPoll := flag.Duration("busy-poll", 0, "reactor, reactor-hop: how long an idle I/O thread polls before it sleeps (0 = never)")
	bufSize := flag.Int("buffer-size", 16384, "reactor, reactor-hop: pooled buffer size; net: per-connection buffer size")
	shared := flag.Bool("shared", false, "reactor, reactor-hop: all I/O threads wait on one shared poller")
	ringBufs := flag.Int("ring-buffers", 0, "reactor, reactor-hop on io_uring: buffers each I/O thread lends its ring at first (0 = the engine's default)")
	ringSlots := flag.Int("ring-slots", 0, "reactor, reactor-hop on io_uring: most buffers an I/O thread may lend (0 = the engine's default)")
	backend := flag.String("backend", "auto", "reactor, reactor-hop: auto (io_uring where allowed), epoll or uring")
	cpuProfile := flag.String("cpuprofile", "", "write the server's CPU profile to this file (stopped by SIGINT/SIGTERM)")
	network := flag.String("network", "tcp", "tcp; udp: echo each datagram back to its sender; unix: a Unix-domain stream socket at the path -addr (reactor, gnet, nbio, net)")
	flag.Parse()
	if flag.NArg() > 0 {
		fatalf("unexpected arguments: %q", flag.Args())
	}
	if *threads < 1 || *bufSize <= 0 || *busyPoll < 0 {
		fatalf("-io-threads must be ≥ 1, -buffer-size > 0 and -busy-poll ≥ 0")
	}
	if *network != "tcp" && *network != "udp" && *network != "unix" {
		fatalf("-network %q: want tcp, udp or unix", *network)
	}
	udp := *network == "udp"
	if *network == "unix" {
		// The socket file is this run's: one left by a server that was
		// killed would refuse the bind.
		os.Remove(*addr)
	}

	// Catch the signals before announcing the address, so a runner that
	// signals right after reading the line is not racing the handler.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)

	var (
		bound string
		err   error
	)
	switch *engine {
	case "reactor", "reactor-hop":
		bound, err = serveReactor(*addr, *network, reactorOptions{
			threads:   *threads,
			busyPoll:  *busyPoll,
			bufSize:   *bufSize,
			shared:    *shared,
			hop:       *engine == "reactor-hop",
			backend:   *backend,
			ringBufs:  *ringBufs,
			ringSlots: *ringSlots,
			udp:       udp,
		})
	case "gnet":
		bound, err = serveGnet(*addr, *network, *threads)
	case "nbio":
		bound, err = serveNbio(*addr, *network, *threads)
	case "net":
		if udp {
			bound, err = serveNetUDP(*addr, *bufSize)
		} else {
			bound, err = serveNet(*addr, *network, *bufSize)
		}
	default:
		fatalf("unknown -engine %q (want reactor, reactor-hop, gnet, nbio or net)", *engine)
	}
	if err != nil {
		fatalf("%s: %v", *engine, err)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fatalf("%v", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatalf("%v", err)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("listening on %s\n", bound)

	select {
	case <-sigs:
	case <-time.After(maxLifetime):
		// A runner that died without stopping its server must not leave it
		// running for ever.
		fmt.Fprintf(os.Stderr, "server: exiting after %v\n", maxLifetime)
	}
}

// maxLifetime bounds a server's life, whatever its runner does.
const maxLifetime = 30 * time.Minute

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "server: "+format+"\n", args...)
	os.Exit(1)
}
