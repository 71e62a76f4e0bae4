package faults_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/seq"
)

// TestPeerResetWithMiBQueued: the server queues 16 MiB for a client that
// never reads, so at least 1 MiB waits in the engine's queue; the client
// closes with SO_LINGER 0 (a reset). The connection gets exactly one
// OnClose, with an error; every write completes exactly once, in the
// order the writes were accepted and before OnClose, the queued ones with
// an error; no buffer is left out. Once with a read outstanding on the
// server, once with none (then only the write side can see the reset).
func TestPeerResetWithMiBQueued(t *testing.T) {
	for _, reading := range []bool{true, false} {
		name := "reading"
		if !reading {
			name = "not-reading"
		}
		t.Run(name, func(t *testing.T) { testPeerReset(t, reading) })
	}
}

func testPeerReset(t *testing.T, reading bool) {
	const (
		total    = 16 << 20
		minQueue = 1 << 20
	)
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	srv := &resetServer{
		e: e, reading: reading, total: total,
		queued: make(chan *reactor.Conn, 1), closed: make(chan error, 4),
	}
	ln, err := e.Listen("127.0.0.1:0", srv, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cl := dialSized(t, ln.Addr().String(), sockSizes{}) // never reads
	c := testutil.Await(t, srv.queued, 20*time.Second, "the server to queue its writes")

	// The kernel takes what the socket buffers hold; the rest stays queued.
	queued, last, since := int64(0), int64(-1), time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if queued = c.QueuedBytes(); queued != last {
			last, since = queued, time.Now()
		} else if time.Since(since) > 100*time.Millisecond {
			break
		}
	}
	if queued < minQueue {
		t.Fatalf("%d bytes queued in the engine for a peer that does not read, want at least %d", queued, minQueue)
	}
	srv.mu.Lock()
	done := len(srv.got)
	srv.mu.Unlock()
	t.Logf("%d of %d writes completed and %d bytes still queued before the reset", done, len(srv.issued), queued)

	if err := cl.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	err = testutil.Await(t, srv.closed, 20*time.Second, "OnClose after the peer's reset")
	if err == nil {
		t.Fatal("OnClose after a peer reset reported no error")
	}
	t.Logf("close reason: %v", err)
	time.Sleep(100 * time.Millisecond) // room for a wrong second OnClose or a late OnWrite

	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closes != 1 {
		t.Errorf("OnClose ran %d times, want 1", srv.closes)
	}
	if srv.late != 0 {
		t.Errorf("%d OnWrite calls came after OnClose", srv.late)
	}
	if !slices.Equal(srv.got, srv.issued) {
		t.Errorf("write completions (%d) are not the %d accepted writes, once each in order: %s",
			len(srv.got), len(srv.issued), firstDifference(srv.got, srv.issued))
	}
	if srv.failed == 0 {
		t.Error("no write completed with an error, though bytes were still queued at the reset")
	}
	if srv.badN != 0 {
		t.Errorf("%d write completions reported more bytes than written, or fewer without an error", srv.badN)
	}
	t.Logf("writes: %d completed whole, %d with an error", len(srv.got)-srv.failed, srv.failed)
	if n := e.Stats().BuffersOut(); n != 0 {
		t.Errorf("%d buffers out after the reset, want 0", n)
	}
}

// resetServer queues total bytes in pooled buffers on each connection
// and records every write completion (a WriteHandler).
type resetServer struct {
	e       *reactor.Engine
	reading bool
	total   int
	queued  chan *reactor.Conn
	closed  chan error

	mu     sync.Mutex
	issued []seq.Number // stamps of accepted writes, in order
	got    []seq.Number // stamps of OnWrite calls, in order
	size   map[seq.Number]int
	failed int // completions with an error
	badN   int // completions whose byte count does not fit
	late   int // OnWrite after OnClose
	closes int
}

func (s *resetServer) OnOpen(c *reactor.Conn) {
	s.mu.Lock()
	s.size = make(map[seq.Number]int)
	s.mu.Unlock()
	for n := 0; n < s.total; {
		b := s.e.Buffers().Get()
		b.Commit(min(b.Cap(), s.total-n))
		k := b.Len()
		st, err := c.WriteBuffer(b)
		if err != nil {
			s.closed <- err
			return
		}
		// Completions of this connection are delivered only after OnOpen
		// returns, so the stamp is recorded before its OnWrite can come.
		s.mu.Lock()
		s.issued = append(s.issued, st)
		s.size[st] = k
		s.mu.Unlock()
		n += k
	}
	if s.reading {
		c.Read()
	}
	s.queued <- c
}

func (s *resetServer) OnRead(c *reactor.Conn, b *reactor.Buffer, err error) {
	if b != nil {
		b.Release()
	}
	if err == nil {
		c.Read()
	}
}

func (s *resetServer) OnWrite(c *reactor.Conn, st seq.Number, n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, st)
	if s.closes > 0 {
		s.late++
	}
	size, ok := s.size[st]
	switch {
	case !ok, n > size:
		s.badN++
	case err != nil:
		s.failed++
	case n != size:
		s.badN++
	}
}

func (s *resetServer) OnClose(c *reactor.Conn, err error) {
	s.mu.Lock()
	s.closes++
	s.mu.Unlock()
	s.closed <- err
}

// firstDifference describes where two stamp sequences part.
func firstDifference(got, want []seq.Number) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("completion %d has stamp %d, want %d", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("%d completions for %d writes", len(got), len(want))
}
