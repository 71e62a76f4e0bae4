package faults_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
)

// TestHalfCloseTrials: 10,000 connections (1,000 with -short, 2,000
// under Wine), 64 at a time. Each client writes one message of a random
// size from 1 B to 64 KiB and shuts down its write side; the echo server
// must return every byte, then EOF. Every connection gets exactly one
// OnClose, with no error (the server closes gracefully after its echo has
// gone out), and the engine ends with nothing open.
func TestHalfCloseTrials(t *testing.T) {
	trials := 10_000
	switch {
	case testing.Short():
		trials = 1_000
	case underWine():
		// Under Wine a connection costs wineserver round trips: 10,000
		// took 80 s.
		trials = 2_000
	}
	const (
		parallel = 64
		maxSize  = 64 << 10
	)
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	var (
		mu      sync.Mutex
		seen    = make(map[*reactor.Conn]int, trials)
		closes  atomic.Int64
		reasons = make(chan error, 16)
	)
	ln, err := e.Listen("127.0.0.1:0", &echo.Handler{OnClosed: func(c *reactor.Conn, err error) {
		mu.Lock()
		seen[c]++
		mu.Unlock()
		closes.Add(1)
		if err != nil {
			select {
			case reasons <- err:
			default:
			}
		}
	}}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()

	// Messages are slices of one random block at random offsets, so
	// bytes of one connection cannot pass for another's.
	block := testutil.RandomBytes(2*maxSize, 7)
	rng := rand.New(rand.NewPCG(7, 8))
	type trial struct{ off, size int }
	plan := make([]trial, trials)
	for i := range plan {
		size := 1 << rng.IntN(17) // log-uniform: most small, some near 64 KiB
		size = min(size+rng.IntN(size), maxSize)
		plan[i] = trial{off: rng.IntN(maxSize), size: size}
	}

	start := time.Now()
	sem := make(chan struct{}, parallel)
	errs := make(chan error, trials)
	var wg sync.WaitGroup
	var sent atomic.Int64
	for i, p := range plan {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			msg := block[p.off : p.off+p.size]
			if err := halfCloseTrial(addr, msg); err != nil {
				errs <- fmt.Errorf("trial %d (%d bytes): %w", i, p.size, err)
			}
			sent.Add(int64(p.size))
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed++; failed <= 5 {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d trials failed", failed, trials)
	}
	took := time.Since(start)

	// The last OnClose may still be on its way after the client saw EOF.
	deadline := time.Now().Add(10 * time.Second)
	for closes.Load() < int64(trials) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // room for a wrong second OnClose
	mu.Lock()
	twice := 0
	for _, n := range seen {
		if n != 1 {
			twice++
		}
	}
	conns := len(seen)
	mu.Unlock()
	if n := closes.Load(); n != int64(trials) || conns != trials || twice != 0 {
		t.Errorf("%d OnClose calls for %d connections (%d trials); %d connections closed more than once",
			n, conns, trials, twice)
	}
	select {
	case err := <-reasons:
		t.Errorf("a half-closed echo ended with %v, want a graceful close", err)
	default:
	}
	s := e.Stats()
	if s.ConnsOpen != 0 || s.ConnsTotal != int64(trials) || s.BuffersOut() != 0 {
		t.Errorf("after the trials: %d connections open, %d ever, %d buffers out; want 0, %d, 0",
			s.ConnsOpen, s.ConnsTotal, s.BuffersOut(), trials)
	}
	t.Logf("%d trials, %d MiB each way, in %v", trials, sent.Load()>>20, took.Round(time.Millisecond))
}

// halfCloseTrial sends msg on a new connection, shuts down the write
// side, and checks that exactly msg comes back, then EOF.
func halfCloseTrial(addr string, msg []byte) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	c := nc.(*net.TCPConn)
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(c) // up to EOF
	if err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("got %d bytes back before EOF, not the %d sent", len(got), len(msg))
	}
	return nil
}
