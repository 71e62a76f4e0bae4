package faults_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
)

// TestTinySocketBuffersNoLossNoSpin: 4 MiB (1 MiB with -short) streamed
// through the echo server with every socket buffer asked to be 1 KiB (the
// kernel rounds up to its minimum), on both sides, to a client that reads
// 1 KiB a millisecond at most. Every byte comes back in order, the echo
// closes gracefully, and the process stays well under one CPU: the engine
// waits for the tiny buffers to drain instead of retrying in a loop. The
// pace is slow so that moving the bytes costs a small share of the wall
// time (about 20% here) and a loop that retries for as long as the
// drain lasts stands out (it took 93% on io_uring).
func TestTinySocketBuffersNoLossNoSpin(t *testing.T) {
	size := 4 << 20
	if testing.Short() {
		size = 1 << 20
	}
	const tiny = 1024
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	closed := make(chan error, 1)
	ln, err := e.Listen("127.0.0.1:0", &echo.Handler{OnClosed: func(c *reactor.Conn, err error) { closed <- err }},
		reactor.ListenOptions{ConnOptions: reactor.ConnOptions{SendBuffer: tiny, ReceiveBuffer: tiny}})
	if err != nil {
		t.Fatal(err)
	}
	msg := testutil.RandomBytes(size, 13)
	// Loopback's segments are 64 KiB, and a window that can never hold
	// one crawls at the pace of TCP's zero-window probes, whatever the
	// server (Go's net echo moves 190 KB in 10 s so): the client
	// advertises 536-byte segments, as a real path's MTU would bound them.
	c, err := tryDialSized(ln.Addr().String(), sockSizes{send: tiny, receive: tiny, segment: 536})
	if errors.Is(err, errNoSuchOption) && runtime.GOOS == "windows" {
		t.Skipf("TCP_MAXSEG refused (%v; Wine's setsockopt does not pass it to the host's stack): without it, "+
			"1 KiB buffers on loopback, whose segments are 64 KiB, leave TCP itself crawling at the pace of its "+
			"zero-window probes", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))

	span := startCPU(t)
	werr := make(chan error, 1)
	go func() {
		var err error
		for p := msg; len(p) > 0 && err == nil; {
			k := min(len(p), 16<<10)
			_, err = c.Write(p[:k])
			p = p[k:]
		}
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	got, err := readPaced(c, 1<<10)
	if err != nil {
		why := "still open"
		select {
		case cerr := <-closed:
			why = fmt.Sprintf("closed with %v", cerr)
		case <-time.After(time.Second):
		}
		st := e.Stats()
		t.Fatalf("read %d of %d bytes, then %v; the server's connection: %s; engine: conns open %d, send waits %d, recv retries %d, ring %+v",
			len(got), size, err, why, st.ConnsOpen, st.SendWaits, st.RecvRetries, st.Ring)
	}
	checkNoSpin(t, span, "tiny buffers")
	if err := testutil.Await(t, werr, 10*time.Second, "the writer"); err != nil {
		t.Fatalf("writing: %v", err)
	}
	if !bytes.Equal(got, msg) {
		i := 0
		for i < min(len(got), len(msg)) && got[i] == msg[i] {
			i++
		}
		t.Fatalf("read %d bytes then EOF, want the %d written; first difference at byte %d", len(got), size, i)
	}
	if err := testutil.Await(t, closed, 10*time.Second, "the echo's OnClose"); err != nil {
		t.Fatalf("the echo ended with %v, want a graceful close", err)
	}
	t.Logf("%d KiB echoed through 1 KiB buffers", size>>10)
}
