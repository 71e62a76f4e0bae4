package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/sock"
)

const (
	// shutdownTimeout bounds the engine's graceful close of what is left.
	shutdownTimeout = 5 * time.Second
	// dialTimeout bounds each connect.
	dialTimeout = 5 * time.Second
	// settleTimeout bounds the wait for goroutines and descriptors to go
	// back to their baseline after shutdown; settleStep is the poll period.
	settleTimeout = 2 * time.Second
	settleStep    = 10 * time.Millisecond
)

// Config is what the flags set.
type Config struct {
	Addr       string        `json:"addr,omitempty"` // an external server; "" runs the engine in-process
	Conns      int           `json:"conns"`
	Duration   time.Duration `json:"duration_ns"`
	Drain      time.Duration `json:"drain_ns"` // bound on the drain after the writers stop
	MinSize    int           `json:"min_size"`
	MaxSize    int           `json:"max_size"`
	Window     int           `json:"window"`
	Seed       uint64        `json:"seed"`
	IOThreads  int           `json:"io_threads"`
	BufferSize int           `json:"buffer_size"`
	Shared     bool          `json:"shared"`
	Reads      int           `json:"reads"`
	ReadChain  int           `json:"read_chain"`
	Backend    string        `json:"backend"`      // auto, epoll or uring; the report names the one taken
	UDPFlows   int           `json:"udp_flows"`    // datagram flows beside the connections (in-process engine only)
	UDPMaxSize int           `json:"udp_max_size"` // largest datagram
	UDPWindow  int           `json:"udp_window"`   // datagrams unanswered per flow, at most
	Unix       bool          `json:"unix"`         // the echo runs over a Unix-domain socket
}

func (c *Config) validate() error {
	switch {
	case c.Conns < 1:
		return errors.New("-conns must be at least 1")
	case c.Duration <= 0 || c.Drain <= 0:
		return errors.New("-duration and -drain must be positive")
	case c.MinSize < 1 || c.MaxSize < c.MinSize:
		return errors.New("need 1 ≤ -min-size ≤ -max-size")
	case c.Window < c.MaxSize:
		return fmt.Errorf("-window (%d) must be at least -max-size (%d): a chunk must fit in the window", c.Window, c.MaxSize)
	case c.IOThreads < 0 || c.BufferSize < 1 || c.Reads < 1:
		return errors.New("need -io-threads ≥ 0, -buffer-size ≥ 1 and -reads ≥ 1")
	case c.UDPFlows < 0:
		return errors.New("-udp must not be negative")
	case c.UDPFlows > 0 && (c.UDPMaxSize < datagramHeader || c.UDPMaxSize > sock.MaxDatagramSize || c.UDPWindow < 1):
		return fmt.Errorf("need %d ≤ -udp-max-size ≤ %d and -udp-window ≥ 1", datagramHeader, sock.MaxDatagramSize)
	case c.UDPFlows > 0 && c.Addr != "":
		return errors.New("-udp drives the in-process engine's datagram echo: not with -addr")
	}
	if c.Unix && c.Addr != "" {
		return errors.New("-unix serves the in-process engine on a socket of its own: with -addr, give unix:PATH instead")
	}
	if c.Addr == "" || strings.HasPrefix(c.Addr, "unix:") {
		return nil
	}
	ap, err := netip.ParseAddrPort(c.Addr)
	if err != nil {
		return fmt.Errorf("-addr %q: want a loopback IP:port such as 127.0.0.1:7007: %v", c.Addr, err)
	}
	if !ap.Addr().IsLoopback() || ap.Port() == 0 {
		return fmt.Errorf("-addr %s: refusing a non-loopback address or port 0: the stress test sends traffic on loopback only", c.Addr)
	}
	return nil
}

// run drives the echo server for cfg.Duration (less if ctx ends first)
// and returns the report; an error means the run could not start. live,
// if not nil, gets the progress line.
func run(ctx context.Context, cfg Config, live io.Writer) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := primeNetpoller(); err != nil {
		return nil, err
	}
	// Empty lists, not nil, so that the JSON report says [] rather than null.
	rep := &Report{Config: cfg, Server: cfg.Addr, Corruptions: []Corruption{}, ClientErrors: []string{}, Failures: []string{}}
	rep.Before.Process = takeProcess()

	var e *reactor.Engine
	var packetAddr netip.AddrPort
	if cfg.Addr == "" {
		var err error
		if e, rep.Server, packetAddr, err = startEngine(cfg); err != nil {
			return nil, err
		}
		rep.Backend = e.Backend().String()
		before := takeEngine(e)
		rep.Before.Engine = &before
	}

	var t totals
	clients := dialAll(ctx, &cfg, rep.Server, &t, rep)
	rep.Conns = len(clients)
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range clients {
		// The hard bound on every blocking call, should the server hang
		// before the writers are stopped.
		c.setDeadline(start.Add(cfg.Duration + cfg.Drain))
		wg.Go(func() { c.write(stop) })
		wg.Go(c.read)
	}
	if cfg.UDPFlows > 0 {
		rep.Datagrams = &DatagramReport{Errors: []string{}}
		drops, dropsOK := udpDrops()
		wg.Go(func() {
			runDatagrams(&cfg, packetAddr, stop, cfg.Drain, rep.Datagrams, &t.datagrams)
			if after, ok := udpDrops(); ok && dropsOK {
				d := after - drops
				rep.Datagrams.KernelDrops = &d
			}
		})
	}
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	stopProgress := startProgress(live, &t, start)

	timer := time.NewTimer(cfg.Duration)
	select {
	case <-timer.C:
	case <-ctx.Done():
	case <-finished: // every connection ended early
	}
	timer.Stop()
	close(stop)
	drainBy := time.Now().Add(cfg.Drain)
	for _, c := range clients {
		c.setDeadline(drainBy)
	}
	<-finished // bounded by the deadlines
	rep.Duration = int64(time.Since(start))
	stopProgress()
	rep.collect(clients)

	if e != nil {
		if err := e.Shutdown(shutdownTimeout); err != nil {
			rep.ShutdownError = err.Error()
		}
		after := takeEngine(e)
		rep.After.Engine = &after
		if cfg.Unix {
			removeUnixDir(rep.Server)
		}
	}
	rep.After.Process = settle(rep.Before.Process)
	rep.judge()
	return rep, nil
}

// primeNetpoller makes the Go runtime open its own poller descriptors (an
// epoll instance and an eventfd on Linux, kept for the life of the
// process) before the baseline is counted, so they are not taken for a
// leak.
func primeNetpoller() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("opening a loopback socket: %w", err)
	}
	return ln.Close()
}

// startEngine starts the engine with an echo listener on a loopback port
// chosen by the kernel (with -unix, on a socket file in a new temporary
// directory), and with cfg.UDPFlows a datagram echo, and returns the
// addresses they are bound to.
func startEngine(cfg Config) (*reactor.Engine, string, netip.AddrPort, error) {
	backend, err := reactor.ParseBackend(cfg.Backend)
	if err != nil {
		return nil, "", netip.AddrPort{}, err
	}
	e, err := reactor.New(reactor.Config{
		IOThreads:    cfg.IOThreads,
		BufferSize:   cfg.BufferSize,
		SharedPoller: cfg.Shared,
		MaxReads:     cfg.Reads,
		ReadChain:    cfg.ReadChain,
		Backend:      backend,
	})
	if err != nil {
		return nil, "", netip.AddrPort{}, fmt.Errorf("starting the engine: %w", err)
	}
	fail := func(err error) (*reactor.Engine, string, netip.AddrPort, error) {
		if serr := e.Shutdown(shutdownTimeout); serr != nil {
			err = errors.Join(err, fmt.Errorf("shutting the engine down: %w", serr))
		}
		return nil, "", netip.AddrPort{}, err
	}
	addr := "127.0.0.1:0"
	if cfg.Unix {
		dir, err := os.MkdirTemp("", "reactor-stress-")
		if err != nil {
			return fail(err)
		}
		addr = "unix:" + filepath.Join(dir, "echo.sock")
	}
	ln, err := e.Listen(addr, &echo.Handler{Reads: cfg.Reads}, reactor.ListenOptions{})
	if err != nil {
		return fail(fmt.Errorf("listening: %w", err))
	}
	if cfg.Unix {
		addr = "unix:" + ln.Path()
	} else {
		addr = ln.Addr().String()
	}
	var packetAddr netip.AddrPort
	if cfg.UDPFlows > 0 {
		p, err := e.ListenPacket("127.0.0.1:0", echo.Packet{}, reactor.PacketOptions{MaxDatagram: cfg.UDPMaxSize})
		if err != nil {
			return fail(fmt.Errorf("binding the datagram echo: %w", err))
		}
		packetAddr = p.LocalAddr()
	}
	return e, addr, packetAddr, nil
}

// removeUnixDir removes the temporary directory of a -unix run's socket,
// once the engine is shut down (its listener has removed the file).
func removeUnixDir(addr string) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		os.Remove(filepath.Dir(path))
	}
}

// dialAll connects cfg.Conns clients; a connection that fails is a client
// error in rep and the run goes on with the others.
func dialAll(ctx context.Context, cfg *Config, addr string, t *totals, rep *Report) []*client {
	pat := newPattern(max(cfg.MaxSize, readSize))
	d := net.Dialer{Timeout: dialTimeout}
	var clients []*client
	for i := range cfg.Conns {
		network, target := "tcp", addr
		if path, ok := strings.CutPrefix(addr, "unix:"); ok {
			network, target = "unix", path
		}
		conn, err := d.DialContext(ctx, network, target)
		if err != nil {
			rep.ClientErrors = append(rep.ClientErrors, fmt.Sprintf("conn %d: dial %s: %v", i, addr, err))
			continue
		}
		clients = append(clients, newClient(i, conn.(streamConn), cfg, pat, t))
	}
	return clients
}

// settle waits, up to settleTimeout, for the goroutines and descriptors
// of the process to go back to the baseline (goroutines that have closed
// their channels may still be on their way out) and returns the last
// count.
func settle(base ProcessCounters) ProcessCounters {
	deadline := time.Now().Add(settleTimeout)
	for {
		now := takeProcess()
		if now.settledTo(base) || time.Now().After(deadline) {
			return now
		}
		time.Sleep(settleStep)
	}
}
