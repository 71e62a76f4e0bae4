package faults_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/seq"
	"github.com/ioreactor/reactor/sock"
)

// TestWriteCloseTimerRace: on each connection, writes from two
// goroutines and from the echo, a Close and an Abort from Go timers
// (0 to 3 ms after OnOpen) and the engine's own read timeout (1 ms) race
// to end it. What is counted towards the 1,000,000 (100,000 with -short)
// is racing operations: every Write or WriteBuffer call, every Close and
// Abort call, and every read-timeout firing, summed over all connections;
// connections are opened, 64 at a time, until the sum reaches the target
// (about 52,000 connections for the million). Under Wine the target is
// 250,000.
//
// Each connection gets exactly one OnClose, no callback after it, every
// write refused only as closed (errors.Is net.ErrClosed) and every write
// begun after a Close or Abort returned, or after OnClose, refused so;
// no panic, every client sees its connection end, and the engine holds
// nothing afterwards. Both the timer and the explicit closes must have
// won some races, or the test did not test the race. Under -race on two
// shared CPUs the million took 25 to 82 s.
//
// An Abort that lost to another close and returned net.ErrClosed stops
// the connection like the others: it returns only once the winner has
// set the closed bit (sock/conn.go, closeWith), so a write begun after it
// must be refused too (sock/closerace_test.go tests that alone).
func TestWriteCloseTimerRace(t *testing.T) {
	target := int64(1_000_000)
	switch {
	case testing.Short():
		target = 100_000
	case underWine():
		// Every socket call is a round trip to the wineserver there: a
		// million took 78 to 163 s.
		target = 250_000
	}
	const inFlight = 64
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	h := &raceHandler{e: e}
	ln, err := e.Listen("127.0.0.1:0", h, reactor.ListenOptions{ConnOptions: reactor.ConnOptions{
		ReadTimeout:   time.Millisecond,
		OnReadTimeout: h.timedOut,
	}})
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	start := time.Now()
	sem := make(chan struct{}, inFlight)
	var clients sync.WaitGroup
	conns := int64(0)
	for h.ops.Load() < target && h.faults.Count() == 0 {
		sem <- struct{}{}
		conns++
		clients.Go(func() {
			defer func() { <-sem }()
			h.client(addr)
		})
	}
	testutil.WaitGroup(t, &clients, 2*time.Minute, "every client seeing its connection end")
	waitCond(t, 20*time.Second, "an OnClose for every connection and every racer done", func() bool {
		return h.opens.Load() == conns && h.closes.Load() == conns && h.racers.Load() == 0
	})
	took := time.Since(start)
	h.faults.Report(t)
	if n := e.Stats().Panics; n != 0 {
		t.Errorf("%d callbacks panicked", n)
	}
	if s := e.Stats(); s.ConnsOpen != 0 || s.BuffersOut() != 0 {
		t.Errorf("after every OnClose: %d connections open, %d buffers out", s.ConnsOpen, s.BuffersOut())
	}
	byClose, byTimer := h.byClose.Load(), h.byTimer.Load()
	t.Logf("%d racing operations on %d connections in %v (%d writes, %d refused as closed, %d timer firings, %d connects reset); closed by Close or Abort %d, by the read timeout %d",
		h.ops.Load(), conns, took.Round(time.Millisecond), h.writes.Load(), h.refused.Load(), h.fires.Load(), h.dialResets.Load(), byClose, byTimer)
	if byClose == 0 || byTimer == 0 {
		t.Errorf("the race was one-sided: %d connections ended by Close or Abort, %d by the read timeout", byClose, byTimer)
	}
}

// raceHandler runs the race on every connection it accepts and checks
// each callback against the connection's record.
type raceHandler struct {
	e      *reactor.Engine
	faults testutil.Faults

	opens, closes    atomic.Int64
	racers           atomic.Int64 // writer goroutines and Go timers not yet finished
	ops              atomic.Int64 // racing operations, as the test counts them
	writes, refused  atomic.Int64
	fires            atomic.Int64 // read-timeout firings
	dialResets       atomic.Int64 // client connects reset by an early Abort
	byClose, byTimer atomic.Int64 // how connections ended
}

// raceConn is one connection's record.
type raceConn struct {
	closes atomic.Int32 // OnClose calls
	// stopped says what stopped the connection, when a Close or Abort has
	// returned or OnClose has run; a write begun after it must be refused.
	stopped atomic.Pointer[string]
}

func (h *raceHandler) rec(c *reactor.Conn, where string) *raceConn {
	rc, _ := c.Context().(*raceConn)
	if rc == nil {
		h.faults.Add("%s on a connection that had no OnOpen", where)
		return &raceConn{}
	}
	if rc.closes.Load() != 0 {
		h.faults.Add("%s after OnClose", where)
	}
	return rc
}

func (h *raceHandler) OnOpen(c *reactor.Conn) {
	rc := &raceConn{}
	c.SetContext(rc)
	h.opens.Add(1)
	c.Read()
	rng := rand.New(rand.NewPCG(uint64(c.RemoteAddr().Port()), uint64(time.Now().UnixNano())))
	h.racers.Add(4)
	for w := range 2 {
		go func() {
			defer h.racers.Add(-1)
			h.writer(c, rc, w)
		}()
	}
	for _, abort := range []bool{false, true} {
		time.AfterFunc(time.Duration(rng.IntN(3000))*time.Microsecond, func() {
			defer h.racers.Add(-1)
			h.ops.Add(1)
			var err error
			if abort {
				err = c.Abort()
			} else {
				err = c.Close()
			}
			if err != nil && !errors.Is(err, net.ErrClosed) {
				h.faults.Add("Close or Abort returned %v, want nil or net.ErrClosed", err)
			}
			// Won or lost to another close, the connection is closed
			// once the call returns.
			what := "Close returned " + fmt.Sprint(err)
			if abort {
				what = "Abort returned " + fmt.Sprint(err)
			}
			rc.stopped.CompareAndSwap(nil, &what)
		})
	}
}

// writer makes eight writes, alternating Write and WriteBuffer, whatever
// happens to the connection meanwhile.
func (h *raceHandler) writer(c *reactor.Conn, rc *raceConn, w int) {
	msg := []byte("a write racing a close and a timer")
	for i := range 8 {
		after := rc.stopped.Load()
		var err error
		what := "Write"
		if (i+w)%2 == 0 {
			_, err = c.Write(msg)
		} else {
			what = "WriteBuffer"
			b := h.e.Buffers().Get()
			b.Append(msg)
			_, err = c.WriteBuffer(b) // takes b, also when it fails
		}
		h.check(after, err, what)
	}
}

// check records a write's outcome: refused only as closed, and refused
// if it began after the connection was stopped.
func (h *raceHandler) check(after *string, err error, what string) {
	h.ops.Add(1)
	h.writes.Add(1)
	switch {
	case err == nil && after != nil:
		h.faults.Add("%s begun after %s was accepted", what, *after)
	case err != nil && !errors.Is(err, net.ErrClosed):
		h.faults.Add("%s returned %v, want nil or net.ErrClosed", what, err)
	case err != nil:
		h.refused.Add(1)
	}
}

// OnRead echoes, one more writer in the race, from the I/O thread.
func (h *raceHandler) OnRead(c *reactor.Conn, b *reactor.Buffer, err error) {
	rc := h.rec(c, "OnRead")
	if err != nil {
		c.Close()
		return
	}
	after := rc.stopped.Load()
	_, werr := c.WriteBuffer(b)
	h.check(after, werr, "WriteBuffer from OnRead")
	c.Read()
}

// OnWrite: completions of writes, successful or failed, come before
// OnClose like every other callback.
func (h *raceHandler) OnWrite(c *reactor.Conn, _ seq.Number, _ int, _ error) {
	h.rec(c, "OnWrite")
}

// timedOut is the read timeout's decision: count the firing and let it
// close the connection.
func (h *raceHandler) timedOut(c *reactor.Conn) bool {
	h.rec(c, "the read timeout")
	h.ops.Add(1)
	h.fires.Add(1)
	return false
}

var onCloseRan = "OnClose ran"

func (h *raceHandler) OnClose(c *reactor.Conn, err error) {
	rc := h.rec(c, "OnClose")
	if n := rc.closes.Add(1); n != 1 {
		h.faults.Add("OnClose ran %d times", n)
		return
	}
	rc.stopped.CompareAndSwap(nil, &onCloseRan)
	h.closes.Add(1)
	switch {
	case err == nil:
		h.byClose.Add(1)
	case errors.Is(err, sock.ErrReadTimeout):
		h.byTimer.Add(1)
	default:
		h.faults.Add("OnClose with %v, want nil (Close, Abort) or ErrReadTimeout", err)
	}
}

// client sends a little for the echo and reads until the engine ends the
// connection, which it must do within a bound.
func (h *raceHandler) client(addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		// The engine may accept and abort the connection before the
		// client's connect has seen the handshake end: a reset then.
		// Its OnOpen and OnClose are still counted. Any other error is
		// a fault.
		if isReset(err) {
			h.dialResets.Add(1)
		} else {
			h.faults.Add("connect: %v", err)
		}
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	c.Write([]byte("echo me")) // may meet a connection already reset
	if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
		h.faults.Add("the engine did not end a connection within 30 s")
	}
}
