package faults_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// TestCloseWith8MiBQueuedToSlowReader: a server connection with a 4 KiB
// send buffer writes 8 MiB (2 MiB with -short) to a client with a 4 KiB
// receive buffer and closes at once; the client reads 4 KiB a
// millisecond. A graceful close waits for a slow reader, never spinning
// meanwhile; a reader that stops is cut off at the linger bound.
func TestCloseWith8MiBQueuedToSlowReader(t *testing.T) {
	size := 8 << 20
	if testing.Short() {
		size = 2 << 20
	}
	msg := testutil.RandomBytes(size, 11)

	// Every byte, then EOF, well within a 30 s linger; the process uses
	// well under one CPU while the close waits for the reader.
	t.Run("drains", func(t *testing.T) {
		const linger = 30 * time.Second
		srv, addr := listenSlowClose(t, linger, msg)
		c := dialSized(t, addr, sockSizes{receive: 4096})
		c.SetDeadline(time.Now().Add(linger + 10*time.Second))
		span := startCPU(t)
		got, err := readPaced(c, 4<<10)
		if err != nil {
			t.Fatalf("read %d bytes, then %v; want all %d then EOF", len(got), err, size)
		}
		checkNoSpin(t, span, "slow drain")
		if !bytes.Equal(got, msg) {
			t.Fatalf("read %d bytes then EOF, but not the %d written", len(got), size)
		}
		cl := testutil.Await(t, srv.closed, 10*time.Second, "OnClose")
		if cl.err != nil {
			t.Fatalf("graceful close with a slow reader ended with %v", cl.err)
		}
		took := cl.at.Sub(testutil.Await(t, srv.closing, time.Second, "the time of Close"))
		if took >= linger {
			t.Fatalf("close took %v, not within the %v linger", took, linger)
		}
		t.Logf("%d KiB drained to a reader of 4 KiB/ms in %v", size>>10, took.Round(time.Millisecond))
	})

	// The reader takes 64 KiB and stops: after the 300 ms linger the
	// connection is aborted with ErrLingerTimeout and the client sees a
	// reset; the wait does not spin either.
	t.Run("aborts", func(t *testing.T) {
		const (
			linger = 300 * time.Millisecond
			slack  = 2 * time.Second
		)
		srv, addr := listenSlowClose(t, linger, msg)
		c := dialSized(t, addr, sockSizes{receive: 4096})
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		span := startCPU(t)
		cl := testutil.Await(t, srv.closed, 10*time.Second, "OnClose after the linger bound")
		checkNoSpin(t, span, "stalled close")
		if !errors.Is(cl.err, sock.ErrLingerTimeout) {
			t.Fatalf("close reason %v, want ErrLingerTimeout", cl.err)
		}
		took := cl.at.Sub(testutil.Await(t, srv.closing, time.Second, "the time of Close"))
		if took < linger || took > linger+slack {
			t.Fatalf("aborted %v after Close, want between the %v linger and %v more", took, linger, slack)
		}
		rest, err := io.ReadAll(c)
		switch {
		case isReset(err):
		case underWine():
			// Wine's closesocket sends a FIN, not a reset, even with
			// SO_LINGER 0 while a send is pending: Go's net shows it too.
			t.Logf("under Wine the client read %d more bytes, then %v, not the reset Windows sends", len(rest), err)
		default:
			t.Fatalf("after the abort the client read %d more bytes, then %v; want a reset", len(rest), err)
		}
		if n := srv.e.Stats().BuffersOut(); n != 0 {
			t.Fatalf("%d buffers out after the abort", n)
		}
		t.Logf("aborted %v after Close; the client read %d KiB more, then %v", took.Round(time.Millisecond), (64<<10+len(rest))>>10, err)
	})
}

// slowCloseServer writes msg on each connection and closes it at once.
type slowCloseServer struct {
	e       *reactor.Engine
	msg     []byte
	closing chan time.Time // when Close was called
	closed  chan closeEvent
}

type closeEvent struct {
	err error
	at  time.Time
}

// listenSlowClose starts a slowCloseServer whose connections have a
// 4 KiB send buffer, on an engine with the given linger.
func listenSlowClose(t *testing.T, linger time.Duration, msg []byte) (*slowCloseServer, string) {
	t.Helper()
	e := testutil.Engine(t, reactor.Config{IOThreads: 2, Linger: linger})
	srv := &slowCloseServer{e: e, msg: msg, closing: make(chan time.Time, 1), closed: make(chan closeEvent, 1)}
	ln, err := e.Listen("127.0.0.1:0", srv, reactor.ListenOptions{ConnOptions: reactor.ConnOptions{SendBuffer: 4096}})
	if err != nil {
		t.Fatal(err)
	}
	return srv, ln.Addr().String()
}

func (s *slowCloseServer) OnOpen(c *reactor.Conn) {
	if _, err := c.Write(s.msg); err != nil {
		c.Abort()
		return
	}
	s.closing <- time.Now()
	c.Close()
}

func (s *slowCloseServer) OnRead(c *reactor.Conn, b *reactor.Buffer, err error) {
	if b != nil {
		b.Release()
	}
}

func (s *slowCloseServer) OnClose(c *reactor.Conn, err error) {
	s.closed <- closeEvent{err: err, at: time.Now()}
}

// readPaced reads c to EOF, at most 4 KiB per read and on average no
// more than rate bytes a millisecond. It keeps the pace by the clock, not
// by sleeping a fixed time per read, so a coarse sleep (Windows) slows it
// no further.
func readPaced(c net.Conn, rate int) ([]byte, error) {
	var got []byte
	buf := make([]byte, 4<<10)
	start := time.Now()
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		due := start.Add(time.Duration(len(got)) * time.Millisecond / time.Duration(rate))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
	}
}
