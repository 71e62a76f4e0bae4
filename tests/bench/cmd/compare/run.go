package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ioreactor/reactor/tests/bench/internal/load"
)

const (
	// setupTimeout bounds the client's opening of its connections.
	setupTimeout = 60 * time.Second
	// startTimeout bounds a server's start, up to its "listening on" line.
	startTimeout = 10 * time.Second
	// stopTimeout is how long a server may take to exit on SIGTERM before
	// it is killed.
	stopTimeout = 5 * time.Second
	// settle separates runs, so that the last run's sockets are gone.
	settle = 200 * time.Millisecond
)

// runResult is one server's run of one workload in one round.
type runResult struct {
	Workload string       `json:"workload"`
	Server   string       `json:"server"`
	Round    int          `json:"round"`
	Result   *load.Result `json:"result,omitempty"`
	Err      string       `json:"error,omitempty"`
}

// eachRun calls run for every workload, round by round (counted from 1),
// and every name once a round, in an order rotated by one each round, so
// that drift spreads over all of them. It prints a progress line per call,
// ending in what run returns (kind names what is counted: "" or "pair "),
// and lets the sockets settle between calls.
func eachRun(o options, kind string, works []workload, names []string, run func(w workload, round int, name string) string) {
	total, n := len(works)*o.rounds*len(names), 0
	for _, w := range works {
		for r := range o.rounds {
			for k := range names {
				n++
				line := run(w, r+1, names[(k+r)%len(names)])
				fmt.Fprintf(os.Stderr, "[%s%d/%d] %s round %d %s\n", kind, n, total, w.name, r+1, line)
				time.Sleep(settle)
			}
		}
	}
}

// runAll runs every workload, round by round, every server once a round
// (eachRun).
func runAll(o options, m machine, b binaries, works []workload, servers []string) []runResult {
	var out []runResult
	eachRun(o, "", works, servers, func(w workload, round int, s string) string {
		rr := runResult{Workload: w.name, Server: s, Round: round}
		res, err := runOne(o, m, b, w, s)
		if err != nil {
			rr.Err = err.Error()
		} else {
			rr.Result = &res
		}
		out = append(out, rr)
		if err != nil {
			return fmt.Sprintf("%s: FAILED: %v", s, err)
		}
		return fmt.Sprintf("%-12s %s", s, progressLine(w, m, res))
	})
	return out
}

func progressLine(w workload, m machine, r load.Result) string {
	srvPct := 100 * float64(r.ServerCPUTicks) / float64(m.clkTck) / r.Elapsed.Seconds()
	s := fmt.Sprintf("%9.0f msg/s %8.1f MB/s  p50 %-9v p99 %-9v server CPU %3.0f%%  client CPU %3.0f%%",
		r.MessagesPerSec(), r.MBPerSec(), roundDur(r.P50), roundDur(r.P99), srvPct, r.ClientCPUPercent())
	if w.mode == load.Idle {
		s += fmt.Sprintf("  RSS %d → %d KiB", r.RSSBeforeKiB, r.RSSAfterKiB)
	}
	return s
}

// runOne starts the server, drives it with the client, and stops it.
func runOne(o options, m machine, b binaries, w workload, server string) (load.Result, error) {
	srv, err := startServer(o, m, b, server, w)
	if err != nil {
		return load.Result{}, err
	}
	res, err := drive(o, m, b, w, srv, time.Time{})
	if serr := srv.stop(); err == nil && serr != nil {
		err = serr
	}
	return res, err
}

// drive runs the client against a started server; its window starts no
// earlier than windowAt, if that is not zero (load.Config.WindowAt).
func drive(o options, m machine, b binaries, w workload, srv *server, windowAt time.Time) (load.Result, error) {
	argv := []string{b.load,
		"-mode", string(w.mode),
		"-addr", srv.addr,
		"-conns", strconv.Itoa(w.conns),
		"-size", strconv.Itoa(w.size),
		"-inflight", strconv.Itoa(o.inFlight),
		"-driver", o.driver,
		"-idle", strconv.Itoa(w.idle),
		"-warmup", o.warmup.String(),
		"-window", o.window.String(),
		"-setup-timeout", setupTimeout.String(),
		"-server-pid", strconv.Itoa(srv.cmd.Process.Pid),
	}
	if w.udp {
		argv = append(argv, "-udp")
	}
	limit := o.warmup + o.window + 2*setupTimeout + 30*time.Second
	if !windowAt.IsZero() {
		argv = append(argv, "-window-at", strconv.FormatInt(windowAt.UnixNano(), 10))
		limit += time.Until(windowAt)
	}
	args := m.pinned(1, argv...)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var stderr tail
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return load.Result{}, fmt.Errorf("client: %w: %s", err, stderr.String())
	}
	if srv.exited() {
		return load.Result{}, fmt.Errorf("server exited during the run: %s", srv.stderr.String())
	}
	var r load.Result
	if err := json.Unmarshal(out, &r); err != nil {
		return load.Result{}, fmt.Errorf("client output %q: %w", out, err)
	}
	if r.Messages == 0 && (w.mode != load.Idle || w.conns > 0) {
		return r, errors.New("no message was echoed in the window")
	}
	return r, nil
}

// socketSeq numbers the Unix-domain workloads' socket files.
var socketSeq atomic.Int64

// server is a running cmd/server process.
type server struct {
	cmd    *exec.Cmd
	addr   string
	stderr tail
	done   chan struct{} // closed when the process has been waited for
	err    error         // Wait's error, once done is closed
}

// startServer starts the server for w and reads its "listening on" line.
func startServer(o options, m machine, b binaries, engine string, w workload) (*server, error) {
	argv := []string{b.server, "-engine", engine, "-addr", "127.0.0.1:0", "-io-threads", strconv.Itoa(o.ioThreads)}
	switch {
	case w.udp:
		argv = append(argv, "-network", "udp")
	case w.unix:
		// A path of its own for every start: paired runs have two servers
		// up at once.
		argv[4] = filepath.Join(b.dir, fmt.Sprintf("%s-%d.sock", engine, socketSeq.Add(1)))
		argv = append(argv, "-network", "unix")
	}
	switch engine {
	case "reactor-busy":
		argv[2] = "reactor"
		argv = append(argv, "-busy-poll", o.busyPollFor().String())
	case "reactor-epoll":
		argv[2] = "reactor"
		argv = append(argv, "-backend", "epoll")
	}
	argv = m.pinned(0, argv...)
	// A pipe of our own, not StdoutPipe: the line is read while another
	// goroutine waits for the process, and Wait must not close the reading
	// end under the reader.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	s := &server{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	s.cmd.Stdout = pw
	s.cmd.Stderr = &s.stderr
	err = s.cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("starting %s: %w", engine, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()

	addr := make(chan string, 1)
	go func() {
		// Standard output is read to its end, so the server never writes
		// into a pipe nobody reads; what is not the line goes with the
		// server's standard error.
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addr <- a
				continue
			}
			fmt.Fprintln(&s.stderr, sc.Text())
		}
	}()
	select {
	case a := <-addr:
		s.addr = a
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("%s exited before listening: %v: %s", engine, s.err, s.stderr.String())
	case <-time.After(startTimeout):
		s.stop()
		return nil, fmt.Errorf("%s did not listen within %v: %s", engine, startTimeout, s.stderr.String())
	}
}

func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop ends the server: SIGTERM, then SIGKILL if it lingers. An exit by
// the signal asked for is no error.
func (s *server) stop() error {
	if s.exited() {
		return fmt.Errorf("server had exited: %v: %s", s.err, s.stderr.String())
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(stopTimeout):
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-s.done
	return fmt.Errorf("server ignored SIGTERM for %v and was killed", stopTimeout)
}

// tail keeps the last bytes written to it: a process's standard error, for
// error messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 2048

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// writeRaw writes every run's result as JSON, one object whatever the
// flags: the alternating rounds' runs, and the paired runs (-paired; an
// empty list without).
func writeRaw(path string, res []runResult, pairs []pairResult) error {
	v := struct {
		Runs  []runResult  `json:"runs"`
		Pairs []pairResult `json:"pairs"`
	}{res, pairs}
	if v.Pairs == nil {
		v.Pairs = []pairResult{}
	}
	if v.Runs == nil {
		v.Runs = []runResult{}
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// busyPollFor is reactor-busy's Config.BusyPoll.
func (o options) busyPollFor() time.Duration {
	if o.busyPoll > 0 {
		return o.busyPoll
	}
	return defaultBusyPoll
}
