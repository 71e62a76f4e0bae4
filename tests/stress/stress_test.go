package main

import (
	"cmp"
	"context"
	"os"
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
