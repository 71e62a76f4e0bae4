package load

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor/internal/hist"
	"github.com/ioreactor/reactor/poller"
)

// patternPeriod is the period of the bytes sent. A prime does not line up
// with any buffer or message size, so a byte echoed twice, dropped or moved
// shows as a mismatch.
const patternPeriod = 251

// readSize is the epoll driver's shared read buffer: larger for
// streaming, where a read's cost is spread over its bytes.
func readSize(m Mode) int {
	if m == Stream {
		return 256 << 10
	}
	return 64 << 10
}

// patternSize is how much of the pattern a run slices from one offset
// below patternPeriod: a message's body (an idle connection's, too), or a
// streaming connection's whole window, offered as one run (nextChunk) and
// compared as one echo at most (onStream).
func patternSize(cfg Config) int {
	if cfg.Mode == Stream {
		return cfg.StreamWindow
	}
	return max(cfg.Size, IdleMessageSize)
}

// maxWait bounds one Wait, so a deadline is never overslept by much.
const maxWait = 100 * time.Millisecond

// maxEvents is the most events one Wait returns (the poller's batch).
const maxEvents = 128

// phase is where a run is; it only moves forward.
type phase uint8

const (
	phaseOpening     phase = iota // opening the active connections
	phaseWarmup                   // traffic, not counted
	phaseOpeningIdle              // Idle mode: opening the idle connections, active traffic not counted
	phaseWindow                   // traffic, counted
	phaseDone
)

// client is the state of one run. Everything in it is touched by one
// goroutine, locked to its thread.
type client struct {
	cfg  Config         // Driver resolved: DriverURing or DriverEpoll
	p    *poller.Poller // the engine's poller: an io_uring (DriverURing) or epoll
	bufs [][]byte       // DriverURing: the provided buffers, by id
	sa   unix.Sockaddr  // the server: IPv4, or Unix-domain ("unix:PATH")
	fam  int            // its address family
	t0   time.Time
	now  time.Duration // since t0, read once per event batch

	conns []*conn // indexed by token: the connection's id, given to the poller
	pat   []byte  // the pattern, long enough for any slice the run takes
	rbuf  []byte  // DriverEpoll: the shared read buffer

	phase     phase
	phaseEnd  time.Duration // the warm-up's or window's end
	setupEnd  time.Duration // opening connections must be done by then
	setupFrom time.Duration

	// Opening: connections started, connections started and not yet
	// ready (for idle ones, ready means their one message came back), and
	// connections ready, by kind.
	started    [kinds]int
	connecting int
	activeOpen int
	idleOpen   int

	counting  bool
	hist      hist.Histogram
	messages  uint64
	bytes     int64
	noBuffers int64 // receives that found the buffer ring empty, while counting

	res         Result
	winStart    time.Duration
	cpuStart    time.Duration
	sleepsStart int64
	srvStart    int64
	setupTime   time.Duration
}

// serverAddr reads cfg.Addr: an IPv4 literal and port, or "unix:PATH"
// for a Unix-domain stream socket (not with Datagram).
func serverAddr(cfg Config) (unix.Sockaddr, int, error) {
	if path, ok := strings.CutPrefix(cfg.Addr, "unix:"); ok {
		if path == "" || cfg.Datagram {
			return nil, 0, fmt.Errorf("load: address %q: want unix:PATH, and a stream mode", cfg.Addr)
		}
		return &unix.SockaddrUnix{Name: path}, unix.AF_UNIX, nil
	}
	ap, err := netip.ParseAddrPort(cfg.Addr)
	if err != nil || !ap.Addr().Is4() {
		return nil, 0, fmt.Errorf("load: address %q: want an IPv4 literal and a port, or unix:PATH", cfg.Addr)
	}
	return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}, unix.AF_INET, nil
}

// Run connects to cfg.Addr and drives it as cfg says, from the calling
// goroutine locked to its OS thread. It returns when the window has ended
// (or at the first error: a reply that does not match what was sent, a
// connection the server closed, a set-up that took too long) and closes
// every connection it opened, abortively, so that no TIME_WAIT is left.
func Run(cfg Config) (Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Result{}, err
	}
	sa, fam, err := serverAddr(cfg)
	if err != nil {
		return Result{}, err
	}
	if err := ensureFiles(cfg.Conns + cfg.IdleConns); err != nil {
		return Result{}, err
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	cl := &client{
		cfg: cfg,
		sa:  sa,
		fam: fam,
		t0:  time.Now(),
	}
	switch cfg.Driver {
	case DriverAuto, DriverURing:
		if cl.p, cl.bufs, err = newRing(cfg); err == nil {
			cfg.Driver = DriverURing
			break
		}
		if cfg.Driver == DriverURing || !errors.Is(err, poller.ErrNotSupported) {
			return Result{}, err
		}
		fallthrough // no io_uring on this kernel: DriverAuto takes epoll
	case DriverEpoll:
		cfg.Driver = DriverEpoll
		if cl.p, err = poller.New(); err != nil {
			return Result{}, err
		}
		cl.rbuf = make([]byte, readSize(cfg.Mode))
	}
	cl.cfg = cfg
	cl.pat = make([]byte, patternSize(cfg)+patternPeriod)
	for i := range cl.pat {
		cl.pat[i] = byte(i % patternPeriod)
	}
	cl.res = Result{Mode: cfg.Mode, Driver: cfg.Driver, ServerCPUTicks: -1}
	cl.setupEnd = cfg.SetupTimeout

	err = cl.loop()
	if cerr := cl.closeAll(); err == nil {
		err = cerr
	}
	if err != nil {
		return Result{}, fmt.Errorf("load: %w", err)
	}
	return cl.res, nil
}

// loop waits for events and moves the phases along until the window
// ends.
func (cl *client) loop() error {
	events := make([]poller.Event, maxEvents)
	for {
		cl.now = time.Since(cl.t0)
		if err := cl.advance(); err != nil {
			return err
		}
		if cl.phase == phaseDone {
			return nil
		}
		n, err := cl.p.Wait(events, cl.waitMillis())
		if err != nil {
			return err
		}
		cl.now = time.Since(cl.t0)
		for _, ev := range events[:n] {
			c := cl.conns[ev.Token]
			if cl.ring() {
				err = cl.ringHandle(c, ev)
			} else {
				err = cl.handle(c, ev.Flags)
			}
			if err != nil {
				return fmt.Errorf("%s connection %d: %w", c.kind, c.id, err)
			}
		}
	}
}

// ring reports whether the client runs on DriverURing.
func (cl *client) ring() bool { return cl.cfg.Driver == DriverURing }

// streams reports whether c is an active connection of a streaming run
// (every other connection does ping-pong, an idle one once).
func (cl *client) streams(c *conn) bool { return c.kind == kindActive && cl.cfg.Mode == Stream }

// waitMillis is how long a wait may sleep: until the next deadline,
// rounded up to a millisecond, at most maxWait.
func (cl *client) waitMillis() int {
	var until time.Duration
	switch cl.phase {
	case phaseWarmup, phaseWindow:
		until = cl.phaseEnd - cl.now
	default:
		until = cl.setupEnd - cl.now
	}
	until = min(max(until, 0), maxWait)
	return int((until + time.Millisecond - 1) / time.Millisecond)
}

// advance opens connections and moves to the next phase when the current
// one is done, as many times as the clock allows.
func (cl *client) advance() error {
	for {
		before := cl.phase
		switch cl.phase {
		case phaseOpening:
			if err := cl.openMore(kindActive, cl.cfg.Conns); err != nil {
				return err
			}
			if cl.activeOpen == cl.cfg.Conns {
				cl.setupTime = cl.now - cl.setupFrom
				cl.phase, cl.phaseEnd = phaseWarmup, cl.now+cl.cfg.Warmup
				if !cl.cfg.WindowAt.IsZero() {
					cl.phaseEnd = max(cl.phaseEnd, cl.cfg.WindowAt.Sub(cl.t0))
				}
			}
		case phaseWarmup:
			if cl.now < cl.phaseEnd {
				return nil
			}
			if cl.cfg.Mode != Idle {
				if err := cl.startWindow(); err != nil {
					return err
				}
				break
			}
			rss, err := procRSSKiB(cl.cfg.ServerPID)
			if err != nil {
				return err
			}
			cl.res.RSSBeforeKiB = rss
			cl.phase = phaseOpeningIdle
			cl.setupFrom, cl.setupEnd = cl.now, cl.now+cl.cfg.SetupTimeout
		case phaseOpeningIdle:
			if err := cl.openMore(kindIdle, cl.cfg.IdleConns); err != nil {
				return err
			}
			if cl.idleOpen == cl.cfg.IdleConns {
				cl.setupTime += cl.now - cl.setupFrom
				if err := cl.startWindow(); err != nil {
					return err
				}
			}
		case phaseWindow:
			if cl.now < cl.phaseEnd {
				return nil
			}
			if err := cl.endWindow(); err != nil {
				return err
			}
		case phaseDone:
			return nil
		}
		if cl.phase == before {
			return nil
		}
	}
}

// openMore starts connections of kind until want of them exist or
// MaxConnecting are being opened. It fails once the set-up deadline has
// passed.
func (cl *client) openMore(kind connKind, want int) error {
	have := cl.activeOpen
	if kind == kindIdle {
		have = cl.idleOpen
	}
	if have == want {
		return nil
	}
	if cl.now > cl.setupEnd {
		return fmt.Errorf("opening connections: %d of %d %s ones ready after %v",
			have, want, kind, cl.cfg.SetupTimeout)
	}
	for cl.started[kind] < want && cl.connecting < cl.cfg.MaxConnecting {
		if err := cl.open(kind); err != nil {
			return err
		}
	}
	return nil
}

// startWindow resets the counters and reads the CPU clocks.
func (cl *client) startWindow() error {
	cl.hist.Reset()
	cl.messages, cl.bytes, cl.noBuffers = 0, 0, 0
	cl.counting = true
	for _, c := range cl.conns {
		c.mark = c.progress(cl.cfg.Mode)
	}
	if cl.cfg.ServerPID > 0 {
		t, err := procCPUTicks(cl.cfg.ServerPID)
		if err != nil {
			return err
		}
		cl.srvStart = t
	}
	cpu, sleeps, err := selfCPU()
	if err != nil {
		return err
	}
	cl.cpuStart, cl.sleepsStart = cpu, sleeps
	cl.winStart = cl.now
	cl.phase, cl.phaseEnd = phaseWindow, cl.now+cl.cfg.Window
	return nil
}

// endWindow reads the clocks again and fills the result.
func (cl *client) endWindow() error {
	cl.counting = false
	r := &cl.res
	r.Elapsed = cl.now - cl.winStart
	r.WindowStart = cl.t0.Add(cl.winStart)
	if cl.cfg.ServerPID > 0 {
		t, err := procCPUTicks(cl.cfg.ServerPID)
		if err != nil {
			return err
		}
		r.ServerCPUTicks = t - cl.srvStart
	}
	cpu, sleeps, err := selfCPU()
	if err != nil {
		return err
	}
	r.ClientCPU = cpu - cl.cpuStart
	r.ClientSleeps = sleeps - cl.sleepsStart
	if cl.cfg.Mode == Idle {
		rss, err := procRSSKiB(cl.cfg.ServerPID)
		if err != nil {
			return err
		}
		r.RSSAfterKiB = rss
		r.IdleOpen = cl.idleOpen
	}
	r.Messages, r.Bytes = cl.messages, cl.bytes
	r.RecvNoBuffers = cl.noBuffers
	r.P50, r.P99 = cl.hist.Quantile(0.50), cl.hist.Quantile(0.99)
	r.Max, r.Mean = cl.hist.Max(), cl.hist.Mean()
	r.Setup = cl.setupTime
	r.SlowestShare = cl.slowestShare()
	cl.phase = phaseDone
	return nil
}

// slowestShare is the least any active connection got done in the window
// over the mean of them all.
func (cl *client) slowestShare() float64 {
	var total, least int64
	n := 0
	for _, c := range cl.conns {
		if c.kind != kindActive {
			continue
		}
		d := c.progress(cl.cfg.Mode) - c.mark
		if n == 0 || d < least {
			least = d
		}
		total += d
		n++
	}
	if total == 0 {
		return 0
	}
	return float64(least) * float64(n) / float64(total)
}

// closeAll closes every connection with a reset (SO_LINGER 0): a run leaves
// no TIME_WAIT behind to hold ephemeral ports for the next one.
//
// The poller is closed first: a ring's requests, and the slots of its file
// table (RegisterFile), hold the sockets' files open, and closing the ring
// cancels the one and empties the other, so no UnregisterFile is needed
// (nor possible: an update queued now would never be submitted). A
// socket's reset is sent when the last of them lets its file go.
func (cl *client) closeAll() error {
	var errs []error
	if err := cl.p.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the poller: %w", err))
	}
	for _, c := range cl.conns {
		if err := c.abort(); err != nil && len(errs) < 3 {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ensureFiles raises the soft descriptor limit to the hard one (Go does so
// at start already; a parent may have lowered it) and checks that conns
// connections fit, with room for the runtime's own descriptors.
func ensureFiles(conns int) error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return os.NewSyscallError("getrlimit", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			return os.NewSyscallError("setrlimit", err)
		}
	}
	if need := uint64(conns) + 64; lim.Cur < need {
		return fmt.Errorf("load: %d connections need %d descriptors; RLIMIT_NOFILE is %d (hard)", conns, need, lim.Cur)
	}
	return nil
}
