package main

import (
	"cmp"
	"context"
	"os"
	"strings"
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
