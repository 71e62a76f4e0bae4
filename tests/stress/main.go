// Command stress is the engine's main job: it runs an echo server on the
// engine in-process (or drives an external one with -addr) and loads it
// from Go's net package, a client independent of the engine, so that a
// bug cannot hide by being made symmetrically on both ends.
//
// Each connection streams the pattern 0, 1, …, 250, 0, 1, … in
// random-sized writes, with at most -window bytes unechoed, and checks
// every byte that comes back. With -udp, datagram flows run beside them
// (datagram.go). At the end the writers stop, the readers
// drain, the engine shuts down, and the report compares the counters
// before and after. The exit status is 1, with the reason on the last
// line, on any corruption, client error or leak.
//
//	go run ./tests/stress -duration 5s -conns 64
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var cfg Config
	flag.StringVar(&cfg.Addr, "addr", "", "drive the echo server at this loopback IP:port (or unix:PATH) instead of an in-process engine")
	flag.IntVar(&cfg.Conns, "conns", 64, "connections")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to send")
	flag.DurationVar(&cfg.Drain, "drain", 5*time.Second, "bound on the drain of the echo once the writers stop")
	flag.IntVar(&cfg.MinSize, "min-size", 1, "smallest write in bytes")
	flag.IntVar(&cfg.MaxSize, "max-size", 65536, "largest write in bytes")
	flag.IntVar(&cfg.Window, "window", 262144, "bytes in flight (written, not yet echoed) per connection, at most")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed of the write sizes")
	flag.IntVar(&cfg.IOThreads, "io-threads", 0, "engine I/O threads (0 = one per CPU)")
	flag.IntVar(&cfg.BufferSize, "buffer-size", 16384, "size of the engine's pooled buffers in bytes")
	flag.BoolVar(&cfg.Shared, "shared", false, "all engine I/O threads wait on one shared poller")
	flag.IntVar(&cfg.Reads, "reads", 1, "reads outstanding per engine connection")
	flag.IntVar(&cfg.ReadChain, "read-chain", 4, "buffers one engine read may fill (readv) once a stream fills whole buffers")
	flag.BoolVar(&cfg.Unix, "unix", false, "serve and drive the echo over a Unix-domain socket (Linux) instead of TCP on loopback")
	flag.StringVar(&cfg.Backend, "backend", "auto", "engine backend: auto (io_uring where allowed), epoll or uring")
	flag.IntVar(&cfg.UDPFlows, "udp", 0, "datagram flows beside the connections, each a UDP socket sending to the engine's datagram echo")
	flag.IntVar(&cfg.UDPMaxSize, "udp-max-size", 1400, "largest datagram in bytes")
	flag.IntVar(&cfg.UDPWindow, "udp-window", 16, "datagrams unanswered per flow, at most")
	asJSON := flag.Bool("json", false, "print the report as JSON too")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "stress: unexpected arguments: %q\n", flag.Args())
		os.Exit(2)
	}

	// The first SIGINT or SIGTERM ends the run early, with a report.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var live io.Writer
	if isTerminal(os.Stdout) {
		live = os.Stdout
	}
	rep, err := run(ctx, cfg, live)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stress: %v\n", err)
		os.Exit(1)
	}
	rep.print(os.Stdout)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(os.Stderr, "stress: encoding the report: %v\n", err)
			os.Exit(1)
		}
	}
	if rep.GoroutineDump != "" {
		fmt.Fprintf(os.Stderr, "goroutines left after the run:\n%s", rep.GoroutineDump)
	}
	fmt.Println(rep.Verdict())
	if !rep.OK() {
		os.Exit(1)
	}
}
