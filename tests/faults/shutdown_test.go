package faults_test

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
)

// TestShutdownWith1000ConnsMidWrite: 1,000 connections (200 with -short)
// in every state Shutdown must end. Nine in ten have a megabyte queued
// (two pooled buffers and a slice of the caller's) for a client that
// never reads, one in ten is echoing mid-stream; every one has a
// read-timeout timer armed (a minute) and a 50 ms blocking task submitted
// just before Shutdown, 1,000 tasks on 32 workers. Shutdown returns
// without an error within its timeout plus 2 s (it took 2.0 to 2.2 s on
// Linux, 2.3 to 2.6 s under Wine: the 2 s timeout, at which the stuck
// connections are aborted, then the teardown); every connection
// got exactly one OnClose, with every accepted task's done before it and
// no callback after it; then the engine holds nothing (no connection,
// descriptor, buffer or registration) and the process is back to its
// descriptors and goroutines from before the engine.
func TestShutdownWith1000ConnsMidWrite(t *testing.T) {
	conns := 1000
	if testing.Short() {
		conns = 200
	}
	const (
		workers = 32
		work    = 50 * time.Millisecond
		timeout = 2 * time.Second
		bound   = timeout + 2*time.Second
	)
	base := testutil.Snapshot()
	e, err := reactor.New(testutil.WithTestBackend(reactor.Config{IOThreads: 2, BlockingWorkers: workers}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Shutdown(timeout) }) // a test that failed early; ErrShutdown otherwise
	h := &shutdownHandler{e: e, big: make([]byte, 1<<20)}
	ln, err := e.Listen("127.0.0.1:0", h, reactor.ListenOptions{ConnOptions: reactor.ConnOptions{
		ReadTimeout: time.Minute,
		SendBuffer:  8 << 10, // so the queue, not the kernel, holds the megabyte
	}})
	if err != nil {
		t.Fatal(err)
	}
	var clients []net.Conn
	var streams sync.WaitGroup
	var streamFaults testutil.Faults // echoes that came back different
	defer func() {
		for _, c := range clients {
			c.Close()
		}
		streams.Wait()
	}()
	streaming := 0
	for i := range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		clients = append(clients, c)
		c.SetDeadline(time.Now().Add(time.Minute))
		if i%10 == 0 {
			streaming++
			streams.Go(func() { echoUntilEnd(c, &streamFaults) })
			continue
		}
		c.(*net.TCPConn).SetReadBuffer(8 << 10)
		c.Write([]byte{'Q'}) // queue a megabyte for me, which I never read
	}
	waitCond(t, 30*time.Second, "every connection stuck or streaming", func() bool {
		return h.stuck.Load() == int64(conns-streaming) && h.echoed.Load() >= int64(streaming)
	})
	queued := 0
	for _, c := range h.all() {
		if c.Context().(*shutdownConn).stuck.Load() && c.QueuedBytes() > 0 {
			queued++
		}
	}
	submitted := 0
	for _, c := range h.all() {
		rec := c.Context().(*shutdownConn)
		rec.accepted.Add(1)
		err := reactor.Submit(c, func() int { time.Sleep(work); return 1 }, h.done)
		if err != nil {
			rec.accepted.Add(-1)
			t.Errorf("Submit: %v", err)
			continue
		}
		submitted++
	}
	pending := e.Stats().Blocking

	start := time.Now()
	err = e.Shutdown(timeout)
	took := time.Since(start)
	if err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	t.Logf("Shutdown of %d connections (%d stuck with writes queued, %d streaming), %d tasks (%d running, %d queued on %d workers): %v",
		conns, queued, streaming, submitted, pending.Running, pending.Queued, workers, took.Round(time.Millisecond))
	if took > bound {
		t.Errorf("Shutdown took %v, want at most %v", took, bound)
	}
	if queued < conns-streaming {
		t.Errorf("only %d of %d connections had writes queued at Shutdown", queued, conns-streaming)
	}
	h.faults.Report(t)
	if n := h.opens.Load(); n != int64(conns) {
		t.Errorf("%d OnOpen calls for %d connections", n, conns)
	}
	for _, c := range h.all() {
		rec := c.Context().(*shutdownConn)
		if n := rec.closes.Load(); n != 1 {
			t.Errorf("a connection got %d OnClose calls, want 1", n)
		}
		if a, d := rec.accepted.Load(), rec.doneAtClose.Load(); a != d {
			t.Errorf("a connection's OnClose came after %d of its %d tasks' dones", d, a)
		}
	}
	testutil.CheckZero(t, e)
	for _, c := range clients {
		c.Close()
	}
	clients = nil
	streams.Wait()
	streamFaults.Report(t)
	if err := testutil.WaitBaseline(base); err != nil {
		t.Error(err)
	}
}

// shutdownHandler queues a megabyte for a client that asks with a 'Q'
// and never reads, and echoes for the others.
type shutdownHandler struct {
	e      *reactor.Engine
	big    []byte // written to every stuck client, never changed
	faults testutil.Faults

	opens, stuck, echoed atomic.Int64

	mu    sync.Mutex
	conns []*reactor.Conn
}

// shutdownConn is one connection's record. done, reads and echo state
// are touched by its callbacks only.
type shutdownConn struct {
	accepted    atomic.Int32 // tasks Submit accepted
	done        int32        // their dones so far
	doneAtClose atomic.Int32 // dones before OnClose
	closes      atomic.Int32
	kind        byte        // 'Q' or 'S', from the first byte read
	stuck       atomic.Bool // a megabyte was queued for it
}

func (h *shutdownHandler) all() []*reactor.Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns
}

func (h *shutdownHandler) rec(c *reactor.Conn, where string) *shutdownConn {
	rec := c.Context().(*shutdownConn)
	if rec.closes.Load() != 0 {
		h.faults.Add("%s after OnClose", where)
	}
	return rec
}

func (h *shutdownHandler) OnOpen(c *reactor.Conn) {
	c.SetContext(&shutdownConn{})
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	h.opens.Add(1)
	c.Read()
}

func (h *shutdownHandler) OnRead(c *reactor.Conn, b *reactor.Buffer, err error) {
	rec := h.rec(c, "OnRead")
	if err != nil {
		c.Close()
		return
	}
	if rec.kind == 0 {
		rec.kind = b.Bytes()[0]
		if rec.kind == 'Q' {
			b.Release()
			// Pooled buffers and a caller's slice, both left queued.
			chain := h.e.Buffers().GetChain(2)
			for x := chain; x != nil; x = x.Next() {
				x.Commit(x.Cap())
			}
			if _, err := c.WriteBuffer(chain); err != nil {
				h.faults.Add("WriteBuffer: %v", err)
			}
			if _, err := c.Write(h.big); err != nil {
				h.faults.Add("Write: %v", err)
			}
			rec.stuck.Store(true)
			h.stuck.Add(1)
			c.Read()
			return
		}
		h.echoed.Add(1)
	}
	c.WriteBuffer(b)
	c.Read()
}

func (h *shutdownHandler) done(c *reactor.Conn, _ int) {
	rec := h.rec(c, "a task's done")
	rec.done++
}

func (h *shutdownHandler) OnClose(c *reactor.Conn, err error) {
	rec := h.rec(c, "OnClose")
	rec.doneAtClose.Store(rec.done)
	rec.closes.Add(1)
}

// echoUntilEnd is a client mid-stream: it sends a kilobyte every 10 ms
// and reads it back, until the engine ends the connection. An echo that
// came back whole but different is a fault.
func echoUntilEnd(c net.Conn, faults *testutil.Faults) {
	msg := make([]byte, 1024)
	msg[0] = 'S'
	got := make([]byte, len(msg))
	for {
		if err := testutil.RoundTrip(c, msg, got); err != nil {
			if errors.Is(err, testutil.ErrEchoDiffers) {
				faults.Add("a streaming client: %v", err)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
