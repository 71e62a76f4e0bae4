// Command load is the benchmark's load client as a process of its own, so
// the runner can pin it to a CPU apart from the server's: one OS thread
// drives every connection through the engine's poller, an io_uring or
// epoll (see package tests/bench/internal/load). It prints one JSON object, the Result, to
// standard output; errors go to standard error with exit status 1.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/ioreactor/reactor/tests/bench/internal/load"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		os.Exit(1)
	}
}

func run() (err error) {
	var cfg load.Config
	mode := flag.String("mode", "pingpong", "pingpong, stream or idle")
	driver := flag.String("driver", "", "uring or epoll; empty means uring where the kernel has it")
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:7007", "server address (IPv4 literal and port, or unix:PATH)")
	flag.IntVar(&cfg.Conns, "conns", 50, "connections carrying measured traffic")
	flag.IntVar(&cfg.Size, "size", 64, "message size (pingpong, idle's active connections) or write size (stream)")
	flag.IntVar(&cfg.InFlight, "inflight", 1, "ping-pong messages in flight per connection")
	flag.BoolVar(&cfg.Datagram, "udp", false, "pingpong over connected UDP sockets: each message one datagram")
	flag.IntVar(&cfg.IdleConns, "idle", 0, "idle mode: connections that echo once, then stay open")
	flag.DurationVar(&cfg.Warmup, "warmup", time.Second, "traffic before the window, not counted")
	flag.DurationVar(&cfg.Window, "window", 5*time.Second, "measured time")
	windowAt := flag.String("window-at", "", "the earliest the window may start (the warm-up lasts until then): RFC 3339 with nanoseconds, or Unix nanoseconds")
	flag.DurationVar(&cfg.SetupTimeout, "setup-timeout", 60*time.Second, "bound on opening the connections")
	flag.IntVar(&cfg.StreamWindow, "stream-window", 1<<20, "stream: bytes written and not yet echoed, per connection")
	flag.IntVar(&cfg.ServerPID, "server-pid", 0, "server process whose CPU time (and, idle mode, VmRSS) to read")
	cpuProfile := flag.String("cpuprofile", "", "write the client's CPU profile to this file")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", flag.Args())
	}
	cfg.Mode = load.Mode(*mode)
	cfg.Driver = load.Driver(*driver)
	if *windowAt != "" {
		if cfg.WindowAt, err = parseTime(*windowAt); err != nil {
			return err
		}
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			err = errors.Join(err, f.Close())
		}()
	}
	r, err := load.Run(cfg)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// parseTime reads -window-at: Unix nanoseconds, or RFC 3339 with optional
// fractional seconds.
func parseTime(s string) (time.Time, error) {
	if ns, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(0, ns), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("-window-at %q: want RFC 3339 (2006-01-02T15:04:05.999999999Z07:00) or Unix nanoseconds", s)
	}
	return t, nil
}
