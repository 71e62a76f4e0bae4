package main

import (
	"cmp"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
)

func TestStressInProcess(t *testing.T) {
	cfg := Config{
		Conns: 8, Duration: 2 * time.Second, Drain: 5 * time.Second,
		MinSize: 1, MaxSize: 65536, Window: 262144, Seed: 1,
		BufferSize: 16384, Reads: 1, ReadChain: 4,
		Backend: cmp.Or(os.Getenv(testutil.BackendEnv), "auto"),
	}
	if testing.Short() {
		cfg.Duration = 500 * time.Millisecond
	}
	rep, err := run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Corruptions) > 0 {
		t.Errorf("corruptions: %+v", rep.Corruptions)
	}
	if len(rep.ClientErrors) > 0 {
		t.Errorf("client errors: %q", rep.ClientErrors)
	}
	if rep.BytesValidated == 0 || rep.Messages == 0 {
		t.Errorf("%d bytes and %d messages validated, want some", rep.BytesValidated, rep.Messages)
	}
	if want := testutil.WithTestBackend(reactor.Config{}).Backend; want != reactor.BackendAuto && rep.Backend != want.String() {
		t.Errorf("ran on %s, want %v", rep.Backend, want)
	}
	if !rep.OK() {
		t.Errorf("%s\n%s", rep.Verdict(), rep.GoroutineDump)
	}
}

// TestStressWithDatagrams: connections and datagram flows together; every
// datagram that did not come back is one the kernel's receive buffers
// dropped.
func TestStressWithDatagrams(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Go's net cannot make a UDP socket under Wine (its SIO_UDP_CONNRESET call fails), and the flows are Go's net")
	}
	cfg := Config{
		Conns: 4, Duration: time.Second, Drain: 5 * time.Second,
		MinSize: 1, MaxSize: 16384, Window: 65536, Seed: 1,
		BufferSize: 16384, Reads: 1, ReadChain: 4,
		Backend:  cmp.Or(os.Getenv(testutil.BackendEnv), "auto"),
		UDPFlows: 4, UDPMaxSize: 1400, UDPWindow: 8,
	}
	rep, err := run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Datagrams
	if d == nil || d.Echoed == 0 || d.Sent < d.Echoed {
		t.Fatalf("datagram report %+v, want datagrams echoed", d)
	}
	if !rep.OK() {
		t.Errorf("%s\n%s", rep.Verdict(), rep.GoroutineDump)
	}
}

// TestStressOverUnixSocket: the same echo and checks over a Unix-domain
// socket; the socket file and its directory are gone afterwards.
func TestStressOverUnixSocket(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the engine offers no Unix-domain sockets on Windows: Wine 8 has no AF_UNIX to test them against (docs/unix.md)")
	}
	cfg := Config{
		Conns: 8, Duration: time.Second, Drain: 5 * time.Second,
		MinSize: 1, MaxSize: 65536, Window: 262144, Seed: 2,
		BufferSize: 16384, Reads: 1, ReadChain: 4,
		Backend: cmp.Or(os.Getenv(testutil.BackendEnv), "auto"),
		Unix:    true,
	}
	rep, err := run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	path, ok := strings.CutPrefix(rep.Server, "unix:")
	if !ok || rep.BytesValidated == 0 || rep.Conns != cfg.Conns {
		t.Fatalf("server %q, %d connections, %d bytes validated: want a unix socket and bytes through all %d", rep.Server, rep.Conns, rep.BytesValidated, cfg.Conns)
	}
	if !rep.OK() {
		t.Errorf("%s\nclient errors: %q\n%s", rep.Verdict(), rep.ClientErrors, rep.GoroutineDump)
	}
	if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
		t.Errorf("the socket's directory after the run: %v, want it removed", err)
	}
}

// TestJudgeFailsOnDatagramTrouble: a changed or twice-answered datagram,
// or a loss the kernel did not count, fails the run.
func TestJudgeFailsOnDatagramTrouble(t *testing.T) {
	cfg := Config{Conns: 1, Window: 64 << 10, BufferSize: 16 << 10, Reads: 1, ReadChain: 4, UDPFlows: 1, UDPMaxSize: 1400, UDPWindow: 4}
	drops := uint64(3)
	for _, tc := range []struct {
		name string
		d    DatagramReport
		want string
	}{
		{"changed", DatagramReport{Flows: 1, Echoed: 5, Corrupt: 1}, "changed"},
		{"twice", DatagramReport{Flows: 1, Echoed: 5, Duplicates: 1}, "answered twice"},
		{"vanished", DatagramReport{Flows: 1, Echoed: 5, Lost: 5, Late: 1, KernelDrops: &drops}, "vanished in the engine"},
		{"none", DatagramReport{Flows: 1}, "no datagram"},
	} {
		r := &Report{Config: cfg, BytesValidated: 1, Conns: 1, Datagrams: &tc.d}
		r.judge()
		if r.OK() || !strings.Contains(r.Verdict(), tc.want) {
			t.Errorf("%s: judged %q, want a failure naming %q", tc.name, r.Verdict(), tc.want)
		}
	}
	r := &Report{Config: cfg, BytesValidated: 1, Conns: 1, Datagrams: &DatagramReport{Flows: 1, Echoed: 5, Lost: 4, Late: 1, KernelDrops: &drops}}
	if r.judge(); !r.OK() {
		t.Errorf("losses the kernel counted failed the run: %s", r.Verdict())
	}
}

// TestJudgeFailsOutsideTheDeclaredBounds: a run whose engine ends with a
// timer armed, blocking work or an io_uring file slot left, or whose buffer peak passed what the
// run can need, fails, each naming what broke.
func TestJudgeFailsOutsideTheDeclaredBounds(t *testing.T) {
	cfg := Config{Conns: 4, Window: 64 << 10, BufferSize: 16 << 10, Reads: 1, ReadChain: 4}
	clean := EngineCounters{Threads: 2}
	for _, tc := range []struct {
		name string
		mod  func(*EngineCounters)
		want string
	}{
		{"timer", func(a *EngineCounters) { a.TimersArmed = 1 }, "timers armed"},
		{"blocking", func(a *EngineCounters) { a.BlockingLeft = 2 }, "blocking tasks"},
		{"ring file slot", func(a *EngineCounters) { a.RingFiles = 1 }, "file-table slots"},
		{"peak", func(a *EngineCounters) { a.BuffersPeak = 1000 }, "at the peak"},
	} {
		r := &Report{Config: cfg, BytesValidated: 1, Conns: 4}
		a := clean
		tc.mod(&a)
		r.After.Engine = &a
		r.judge()
		if r.OK() || !strings.Contains(r.Verdict(), tc.want) {
			t.Errorf("%s: judged %q, want a failure naming %q", tc.name, r.Verdict(), tc.want)
		}
	}
	r := &Report{Config: cfg, BytesValidated: 1, Conns: 4}
	a := clean
	a.BuffersPeak = r.buffersBound(a.Threads)
	r.After.Engine = &a
	if r.judge(); !r.OK() {
		t.Errorf("a run at its bounds failed: %s", r.Verdict())
	}
}

// TestDatagramLossesAreForgottenPastTheHorizon: a flow remembers a
// datagram counted lost for lateHorizon, so that an answer to it counts as
// late; past that it is forgotten, so a long lossy run holds no growing
// set, and an answer to it then counts as a repeat.
func TestDatagramLossesAreForgottenPastTheHorizon(t *testing.T) {
	cfg := Config{UDPMaxSize: 64, Seed: 1}
	f := &datagramFlow{id: 3, cfg: &cfg, pat: newPattern(cfg.UDPMaxSize), tokens: make(chan struct{}, 4),
		outstanding: map[uint64]time.Time{}, lost: map[uint64]time.Time{}}
	t0 := time.Now()
	buf := make([]byte, cfg.UDPMaxSize)
	for seq := range uint64(2) {
		f.fillDatagram(buf, seq)
		f.outstanding[seq] = t0
		f.sent++
	}
	f.expire(t0.Add(lossTimeout + time.Millisecond)) // both lost
	if len(f.lost) != 2 || f.nlost != 2 {
		t.Fatalf("lost %d (%d remembered), want 2", f.nlost, len(f.lost))
	}
	var total atomic.Int64
	want := make([]byte, cfg.UDPMaxSize)
	f.answer(append([]byte(nil), f.fillDatagram(buf, 0)...), want, &total)
	if f.late != 1 || f.duplicates != 0 {
		t.Errorf("an answer within the horizon: late %d, duplicates %d; want 1 and 0", f.late, f.duplicates)
	}
	f.expire(t0.Add(lateHorizon + 2*lossTimeout)) // past the horizon
	if len(f.lost) != 0 {
		t.Errorf("%d losses still remembered past the horizon", len(f.lost))
	}
	f.answer(append([]byte(nil), f.fillDatagram(buf, 1)...), want, &total)
	if f.late != 1 || f.duplicates != 1 {
		t.Errorf("an answer past the horizon: late %d, duplicates %d; want 1 and 1", f.late, f.duplicates)
	}
}
