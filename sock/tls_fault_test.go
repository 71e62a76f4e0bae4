package sock_test

// Faults on the TLS paths: malformed handshakes from raw clients, a real
// TLS stream cut (and corrupted) at arbitrary points on its way in, and
// outbound TLS connects that fail in every way a peer can make them fail.
// Each checks that the engine closes what it must, counts what it must and
// leaks nothing (testutil.Engine checks the engine, TestMain the process).

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// captureClientHello returns the first record a Go TLS client sends: its
// ClientHello, as it would appear on the wire.
func captureClientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = "127.0.0.1"
	}
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Client(a, cfg).Handshake() // fails once the pipe closes
	}()
	defer func() { a.Close(); b.Close(); <-done }()
	b.SetDeadline(time.Now().Add(10 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatalf("capturing the ClientHello: %v", err)
	}
	if hdr[0] != 0x16 {
		t.Fatalf("first record has type %#x, want a handshake (0x16)", hdr[0])
	}
	rec := make([]byte, 5+int(binary.BigEndian.Uint16(hdr[3:])))
	copy(rec, hdr)
	if _, err := io.ReadFull(b, rec[5:]); err != nil {
		t.Fatalf("capturing the ClientHello: %v", err)
	}
	return rec
}

// isTimeout reports whether err is a deadline that passed: the peer did
// not close in time.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readUntilClosed reads c until it ends and returns how it ended: nil
// when the peer closed (EOF or a reset) before deadline, otherwise why not.
func readUntilClosed(c net.Conn, deadline time.Time) error {
	c.SetReadDeadline(deadline)
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		switch {
		case err == nil:
		case isTimeout(err):
			return fmt.Errorf("still open at the deadline: %w", err)
		default:
			return nil // EOF, or a reset: closed either way
		}
	}
}

// waitFor polls cond until it holds or d has passed.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// goodTLSClients echoes through addr with Go's TLS client, one
// connection after another, until stop is closed; it returns how many
// echoes succeeded and the first error.
func goodTLSClients(addr string, cfg *tls.Config, stop <-chan struct{}) (ok int, err error) {
	msg := testutil.RandomBytes(4096, 11)
	got := make([]byte, len(msg))
	for i := 0; ; i++ {
		select {
		case <-stop:
			return ok, nil
		default:
		}
		err := func() error {
			d := &net.Dialer{Timeout: 5 * time.Second}
			c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(msg); err != nil {
				return err
			}
			if _, err := io.ReadFull(c, got); err != nil {
				return err
			}
			if !bytes.Equal(got, msg) {
				return errors.New("echo differs")
			}
			return nil
		}()
		if err != nil {
			return ok, fmt.Errorf("good client %d: %w", i, err)
		}
		ok++
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTLSMalformedClientHello: raw clients that open a TLS handshake
// wrongly. Each must be closed by the server within the handshake timeout
// (plus slack) and counted as a TLS failure, while a well-behaved client
// keeps echoing through the same listener; nothing may leak.
func TestTLSMalformedClientHello(t *testing.T) {
	const hsTimeout = time.Second
	const slack = time.Second
	p := newTLSPair(t)
	e, addr := listenTLSEcho(t, reactor.Config{IOThreads: 2},
		reactor.ListenOptions{ConnOptions: reactor.ConnOptions{TLS: p.server, HandshakeTimeout: hsTimeout}})
	hello := captureClientHello(t, p.client)
	fdsBefore := testutil.FDs()
	// The listener's own descriptors: 1 on Linux, 1 + its pending
	// AcceptEx sockets on Windows.
	lnFDs := int64(sock.ListenerFDs)

	stop := make(chan struct{})
	type goodResult struct {
		ok  int
		err error
	}
	goodDone := make(chan goodResult, 1)
	goodCfg := p.client.Clone()
	goodCfg.ServerName = "127.0.0.1"
	go func() {
		ok, err := goodTLSClients(addr, goodCfg, stop)
		goodDone <- goodResult{ok, err}
	}()
	stopGood := sync.OnceValue(func() goodResult { close(stop); return <-goodDone })
	defer stopGood()

	badLength := func(n uint16) []byte { return []byte{0x16, 0x03, 0x01, byte(n >> 8), byte(n)} }
	cases := []struct {
		name string
		send func(c *net.TCPConn) error
	}{
		{"truncated", func(c *net.TCPConn) error {
			_, err := c.Write(hello[:len(hello)/2])
			return err // and wait: only the handshake timeout ends it
		}},
		{"truncated-then-eof", func(c *net.TCPConn) error {
			if _, err := c.Write(hello[:len(hello)/2]); err != nil {
				return err
			}
			return c.CloseWrite()
		}},
		{"header-only", func(c *net.TCPConn) error {
			_, err := c.Write(hello[:5])
			return err
		}},
		{"length-ffff", func(c *net.TCPConn) error {
			_, err := c.Write(append(badLength(0xFFFF), hello[5:]...))
			return err
		}},
		{"length-over-max", func(c *net.TCPConn) error {
			_, err := c.Write(append(badLength(1<<14+2048+1), hello[5:]...))
			return err
		}},
		{"length-zero", func(c *net.TCPConn) error {
			_, err := c.Write(badLength(0))
			return err
		}},
		{"garbage-http", func(c *net.TCPConn) error {
			_, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
			return err
		}},
		{"garbage-random", func(c *net.TCPConn) error {
			_, err := c.Write(testutil.RandomBytes(8192, 3))
			return err
		}},
		{"garbage-after-hello", func(c *net.TCPConn) error {
			_, err := c.Write(append(bytes.Clone(hello), testutil.RandomBytes(600, 5)...))
			return err
		}},
		{"alert-mid-handshake", func(c *net.TCPConn) error {
			if _, err := c.Write(hello); err != nil {
				return err
			}
			// Let the server answer first, so that the alert arrives
			// while it waits for the client's second flight.
			c.SetReadDeadline(time.Now().Add(hsTimeout))
			if _, err := c.Read(make([]byte, 1)); err != nil {
				return fmt.Errorf("no ServerHello: %w", err)
			}
			_, err := c.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28})
			return err
		}},
		{"alert-after-hello", func(c *net.TCPConn) error {
			_, err := c.Write(append(bytes.Clone(hello), 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28))
			return err
		}},
	}
	var failures int64
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.Stats().TLSFailures
			start := time.Now()
			nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c := nc.(*net.TCPConn)
			defer c.Close()
			if err := tc.send(c); err != nil {
				t.Fatalf("sending: %v", err)
			}
			if err := readUntilClosed(c, start.Add(hsTimeout+slack)); err != nil {
				t.Fatalf("server did not close within %v: %v", hsTimeout+slack, err)
			}
			took := time.Since(start)
			// The failure is counted in the handshake's result, which may
			// land just after the close.
			if !waitFor(slack, func() bool { return e.Stats().TLSFailures > before }) {
				t.Fatalf("TLSFailures stayed %d", e.Stats().TLSFailures)
			}
			failures++
			t.Logf("closed after %v", took.Round(time.Millisecond))
		})
	}

	g := stopGood()
	if g.err != nil {
		t.Errorf("a good client failed meanwhile: %v", g.err)
	}
	if g.ok == 0 {
		t.Errorf("no good client echoed meanwhile")
	}
	t.Logf("%d good echoes meanwhile", g.ok)
	ok := waitFor(3*time.Second, func() bool {
		s := e.Stats()
		return s.ConnsOpen == 0 && s.FDs == lnFDs && s.BuffersOut() == 0
	})
	s := e.Stats()
	if !ok {
		t.Errorf("after the clients: conns open %d, fds %d (want the listener's %d), buffers out %d",
			s.ConnsOpen, s.FDs, lnFDs, s.BuffersOut())
	}
	if s.TLSFailures != failures {
		t.Errorf("TLSFailures %d, want %d (one per malformed client, none for the good ones)", s.TLSFailures, failures)
	}
	if s.TLSHandshakes != int64(g.ok) {
		t.Errorf("TLSHandshakes %d, want %d (the good clients')", s.TLSHandshakes, g.ok)
	}
	if !waitFor(3*time.Second, func() bool { return testutil.FDs() <= fdsBefore }) {
		t.Errorf("descriptors %d, %d before the clients", testutil.FDs(), fdsBefore)
	}
}

// TestTLSStalledHandshakesHoldNoWorker: TLS peers that stall cannot
// starve the others. Nine stalled peers against two handshake workers:
// three connect and say nothing, three stop halfway through their
// ClientHello (neither kind starts a handshake: it waits for the first
// whole record, on no goroutine), and three send a whole ClientHello and
// then never answer the server's flight (their handshakes wait for bytes
// parked, holding no worker: pool.Blocking.Park). A good client still
// completes its handshake and echoes while every stalled one waits (their
// timeout is a minute); when they hang up, each fails and is counted.
func TestTLSStalledHandshakesHoldNoWorker(t *testing.T) {
	const workers, each = 2, 3
	const stalled = 3 * each
	p := newTLSPair(t)
	e, addr := listenTLSEcho(t, reactor.Config{IOThreads: 1, HandshakeWorkers: workers},
		reactor.ListenOptions{ConnOptions: reactor.ConnOptions{TLS: p.server, HandshakeTimeout: time.Minute}})
	hello := captureClientHello(t, p.client)

	var peers []net.Conn
	defer func() {
		for _, c := range peers {
			c.Close()
		}
	}()
	for i := range stalled {
		c := dial(t, addr)
		peers = append(peers, c)
		var send []byte
		switch i % 3 {
		case 1:
			send = hello[:len(hello)/2]
		case 2:
			send = hello
		}
		if _, err := c.Write(send); err != nil {
			t.Fatal(err)
		}
	}
	// Only the whole ClientHellos begin a handshake, and each parks
	// waiting for the client's second flight.
	if !waitFor(10*time.Second, func() bool {
		s := e.Stats()
		return s.ConnsOpen == stalled && s.Handshakes.Parked == each
	}) {
		s := e.Stats()
		t.Fatalf("%d conns open (want %d), handshakes %+v (want %d parked)", s.ConnsOpen, stalled, s.Handshakes, each)
	}
	if h := e.Stats().Handshakes; h.Running+h.Queued != 0 || h.Completed != 0 {
		t.Fatalf("handshakes %+v: only the %d parked ones should have begun", h, each)
	}

	// Before, the stalled peers held both workers until their timeout,
	// and this handshake waited behind them.
	d := &net.Dialer{Timeout: 10 * time.Second} // covers the handshake
	c, err := tls.DialWithDialer(d, "tcp", addr, p.client)
	if err != nil {
		t.Fatalf("a good client, behind %d stalled peers and %d workers: %v", stalled, workers, err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	err = testutil.RoundTrip(c, testutil.RandomBytes(4096, 21), make([]byte, 4096))
	c.Close()
	if err != nil {
		t.Fatalf("the good client's echo: %v", err)
	}
	if s := e.Stats(); s.TLSHandshakes != 1 || s.TLSFailures != 0 || s.Handshakes.Parked != each {
		t.Fatalf("after the good client: %d handshakes, %d failures, %d parked; want 1, 0 and %d",
			s.TLSHandshakes, s.TLSFailures, s.Handshakes.Parked, each)
	}

	for _, c := range peers {
		c.Close()
	}
	peers = nil
	if !waitFor(10*time.Second, func() bool {
		s := e.Stats()
		return s.TLSFailures == stalled && s.Handshakes.Parked == 0 && s.Handshakes.Running == 0 && s.ConnsOpen == 0
	}) {
		s := e.Stats()
		t.Fatalf("after the stalled peers hung up: %d failures (want %d), handshakes %+v, %d conns open",
			s.TLSFailures, stalled, s.Handshakes, s.ConnsOpen)
	}
}

// TestTLSHelloByteByByteHoldsFewBuffers: a ClientHello that arrives a
// byte at a time waits in the pipe until its record is whole (the
// handshake has not begun), and there its bytes are packed into few
// buffers instead of holding a pooled buffer per byte; then the handshake
// completes and echoes.
func TestTLSHelloByteByByteHoldsFewBuffers(t *testing.T) {
	p := newTLSPair(t)
	e, addr := listenTLSEcho(t, reactor.Config{IOThreads: 1},
		reactor.ListenOptions{ConnOptions: reactor.ConnOptions{TLS: p.server, HandshakeTimeout: time.Minute}})
	raw := dial(t, addr)
	defer raw.Close()
	raw.SetNoDelay(true)
	if !waitFor(5*time.Second, func() bool { return e.Stats().ConnsOpen == 1 }) {
		t.Fatal("the connection was not accepted")
	}
	base := e.Stats().Buffers.InUse
	// Go's client, its bytes sent one at a time, each after the server
	// could have read the one before: all but the hello's last byte, then
	// the rest at once.
	var sent atomic.Int64
	peak := base
	slow := &byteConn{Conn: raw, hold: 1, onByte: func() {
		sent.Add(1)
		time.Sleep(100 * time.Microsecond)
		if n := e.Stats().Buffers.InUse; n > peak {
			peak = n
		}
	}}
	c := tls.Client(slow, p.client)
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake after a byte-by-byte ClientHello: %v", err)
	}
	if err := testutil.RoundTrip(c, testutil.RandomBytes(100, 4), make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if sent.Load() < 100 {
		t.Fatalf("only %d bytes went one at a time", sent.Load())
	}
	grew := peak - base
	if grew > 8 {
		t.Errorf("a ClientHello sent a byte at a time held %d more buffers at its peak (%d bytes sent singly): one per byte", grew, sent.Load())
	}
	t.Logf("%d bytes sent singly; at most %d more buffers in use meanwhile", sent.Load(), grew)
}

// byteConn writes its first write a byte at a time, calling onByte after
// each, but the last hold bytes, which go with the next write.
type byteConn struct {
	net.Conn
	hold   int
	onByte func()
	done   bool
}

func (b *byteConn) Write(p []byte) (int, error) {
	if b.done {
		return b.Conn.Write(p)
	}
	b.done = true
	n := 0
	for ; n < len(p)-b.hold; n++ {
		if _, err := b.Conn.Write(p[n : n+1]); err != nil {
			return n, err
		}
		b.onByte()
	}
	m, err := b.Conn.Write(p[n:])
	return n + m, err
}

// TestTLSHandshakeBacklogIsBounded: a peer that sends its ClientHello and
// then floods while its handshake waits for a worker (held here by a
// hook) cannot make the server buffer the flood: once 256 KiB wait, the
// socket's reads wait too, and the flood backs up in the kernel. When the
// handshake gets its worker it reads the flood, fails on it, and is
// counted.
func TestTLSHandshakeBacklogIsBounded(t *testing.T) {
	release := make(chan struct{})
	var held atomic.Bool
	restore := sock.SetHandshakeHook(func() {
		if held.CompareAndSwap(false, true) {
			<-release
		}
	})
	defer restore()
	p := newTLSPair(t)
	e, addr := listenTLSEcho(t, reactor.Config{IOThreads: 1, HandshakeWorkers: 1},
		reactor.ListenOptions{ConnOptions: reactor.ConnOptions{TLS: p.server, HandshakeTimeout: time.Minute}})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce() // before the engine's cleanup, which waits for the handshake
	hello := captureClientHello(t, p.client)
	raw := dial(t, addr)
	defer raw.Close()
	if _, err := raw.Write(hello); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool { return held.Load() }) {
		t.Fatal("the handshake never reached its worker")
	}
	base := e.Stats().Buffers.InUse
	peak := base
	chunk := testutil.RandomBytes(64<<10, 9)
	var sent int64
	for sent < 4<<20 {
		raw.SetWriteDeadline(time.Now().Add(2 * time.Second))
		n, err := raw.Write(chunk)
		sent += int64(n)
		if err != nil {
			break // the kernel's buffers are full: the server reads no more
		}
	}
	if sent <= 1<<20 {
		t.Fatalf("only %d bytes flooded", sent)
	}
	// The server reads past the bound, then no more.
	if !waitFor(10*time.Second, func() bool {
		s := e.Stats()
		peak = max(peak, s.Buffers.InUse)
		return s.BytesIn > 256<<10
	}) {
		t.Fatalf("the server read %d bytes of the flood", e.Stats().BytesIn)
	}
	var in int64
	for settled := 0; settled < 50; {
		time.Sleep(2 * time.Millisecond)
		s := e.Stats()
		peak = max(peak, s.Buffers.InUse)
		if s.BytesIn == in {
			settled++
		} else {
			in, settled = s.BytesIn, 0
		}
	}
	if in >= sent || in > int64(maxHandshakeBacklogBuffers)*16<<10 {
		t.Errorf("the server read %d of the %d bytes flooded: its reads did not wait", in, sent)
	}
	if grew := peak - base; grew > maxHandshakeBacklogBuffers {
		t.Errorf("%d more buffers in use while the flood waited, bound %d", grew, maxHandshakeBacklogBuffers)
	}
	if st := e.Stats(); st.TLSFailures != 0 || st.ConnsOpen != 1 {
		t.Errorf("before the handshake got its worker: %d failures, %d conns open; want 0 and 1", st.TLSFailures, st.ConnsOpen)
	}

	releaseOnce()
	if err := readUntilClosed(raw, time.Now().Add(10*time.Second)); err != nil {
		t.Fatalf("the connection did not close once its handshake met the flood: %v", err)
	}
	if !waitFor(10*time.Second, func() bool { return e.Stats().TLSFailures == 1 }) {
		t.Errorf("TLSFailures %d, want 1", e.Stats().TLSFailures)
	}
	t.Logf("%d bytes flooded, %d read while the handshake waited; at most %d more buffers in use", sent, in, peak-base)
}

// maxHandshakeBacklogBuffers is the bound on buffers a flooded handshake
// may hold: its 256 KiB of backlog in 16 KiB buffers, packed; on io_uring
// what a multishot receive completed before its cancellation took effect
// (the stash stops it at four arrivals, but the kernel may have filled
// every buffer of the thread's ring by then); and a few more.
const maxHandshakeBacklogBuffers = 256<<10/(16<<10) + reactor.DefaultRingBuffers + 8

// TestTLSHandshakeTimeoutEndsIt: the handshake timeout is the loop's
// timer. A peer that never answers ends the handshake no earlier than the
// timeout and within slack of it: outbound, OnClose gets a *DialError
// wrapping ErrHandshakeTimeout; inbound, the connection is closed and
// counted as a TLS failure. Nothing is left running or parked.
func TestTLSHandshakeTimeoutEndsIt(t *testing.T) {
	const hsTimeout = 300 * time.Millisecond
	const slack = 2 * time.Second
	p := newTLSPair(t)
	e, addr := listenTLSEcho(t, reactor.Config{IOThreads: 1},
		reactor.ListenOptions{ConnOptions: reactor.ConnOptions{TLS: p.server, HandshakeTimeout: hsTimeout}})

	t.Run("outbound", func(t *testing.T) {
		silent, stop := plainServer(t, func(c *net.TCPConn) {
			defer c.Close()
			io.Copy(io.Discard, c) // reads the ClientHello, says nothing, until the client closes
		})
		defer stop()
		closed := make(chan error, 1)
		h := &failDial{end: func() {}}
		h.end = func() { closed <- h.err }
		start := time.Now()
		if _, err := e.Dial(silent, h, reactor.DialOptions{Timeout: 5 * time.Second, ConnOptions: reactor.ConnOptions{TLS: p.client, HandshakeTimeout: hsTimeout}}); err != nil {
			t.Fatal(err)
		}
		var err error
		select {
		case err = <-closed:
		case <-time.After(hsTimeout + slack):
			t.Fatalf("no OnClose within %v of a %v handshake timeout", hsTimeout+slack, hsTimeout)
		}
		took := time.Since(start)
		var de *sock.DialError
		if !errors.As(err, &de) || !errors.Is(err, sock.ErrHandshakeTimeout) {
			t.Fatalf("OnClose got %v, want a *DialError wrapping ErrHandshakeTimeout", err)
		}
		if took < hsTimeout {
			t.Errorf("ended after %v, before the %v timeout", took, hsTimeout)
		}
		if n := h.opens.Load(); n != 0 {
			t.Errorf("OnOpen called %d times", n)
		}
	})

	t.Run("inbound", func(t *testing.T) {
		before := e.Stats().TLSFailures
		start := time.Now()
		c := dial(t, addr)
		defer c.Close()
		if err := readUntilClosed(c, start.Add(hsTimeout+slack)); err != nil {
			t.Fatalf("server did not close within %v: %v", hsTimeout+slack, err)
		}
		if took := time.Since(start); took < hsTimeout {
			t.Errorf("closed after %v, before the %v timeout", took, hsTimeout)
		}
		if !waitFor(slack, func() bool { return e.Stats().TLSFailures == before+1 }) {
			t.Errorf("TLSFailures %d, want %d", e.Stats().TLSFailures, before+1)
		}
	})

	if !waitFor(slack, func() bool {
		h := e.Stats().Handshakes
		return h.Running == 0 && h.Parked == 0 && h.Queued == 0
	}) {
		t.Errorf("handshakes left: %+v", e.Stats().Handshakes)
	}
}

// splitConn passes a TLS client's writes to the socket in pieces whose
// sizes come from sizes (each byte: 1 + its low 7 bits; its top bit adds
// a short sleep after the piece, up to splitMaxSleeps of them), and flips the
// bits of mask in the byte at stream offset corruptAt (none when mask is
// 0). crypto/tls serialises its writes, so no lock is needed.
type splitConn struct {
	*net.TCPConn
	sizes     []byte
	next      int
	off       int64
	corruptAt int64
	mask      byte
	sleeps    int
	corrupted atomic.Bool
	onCorrupt func()
}

const (
	splitMaxSleeps = 32
	splitSleep     = 100 * time.Microsecond
)

func (s *splitConn) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k := len(b) - n
		sleep := false
		if len(s.sizes) > 0 {
			v := s.sizes[s.next%len(s.sizes)]
			s.next++
			k = min(k, 1+int(v&0x7f))
			sleep = v&0x80 != 0 && s.sleeps < splitMaxSleeps
		}
		piece := b[n : n+k]
		hit := s.mask != 0 && s.corruptAt >= s.off && s.corruptAt < s.off+int64(k)
		if hit {
			piece = bytes.Clone(piece)
			piece[s.corruptAt-s.off] ^= s.mask
		}
		w, err := s.TCPConn.Write(piece)
		s.off += int64(w)
		n += w
		if hit && s.off > s.corruptAt && !s.corrupted.Swap(true) && s.onCorrupt != nil {
			s.onCorrupt()
		}
		if err != nil {
			return n, err
		}
		if sleep {
			s.sleeps++
			time.Sleep(splitSleep)
		}
	}
	return n, nil
}

// FuzzTLSInboundSplits: a Go TLS client's stream reaches the engine's
// TLS echo server cut at arbitrary points (record headers, bodies and
// handshake messages split across reads), and the echo must come back
// exact. With a corrupted byte, the only acceptable outcomes are the
// exact echo (a byte TLS ignores) or an error: never wrong bytes, never a
// hang past the bound, never a leak (checked after every input).
//
// Inputs: splits (piece sizes, see splitConn), size (payload bytes, mod
// 24 KiB, plus 1), tls12 (TLS 1.2 instead of 1.3), corruptAt and mask
// (the corrupted byte; mask 0 corrupts nothing).
func FuzzTLSInboundSplits(f *testing.F) {
	const (
		maxPayload = 24 << 10
		// hang bounds one input end to end; a corrupted stream gets
		// watchdog to fail on its own before the client shuts its sending
		// side, after which the server must close.
		hang     = 8 * time.Second
		watchdog = 100 * time.Millisecond
	)
	p := newTLSPair(f)
	e := testutil.Engine(f, reactor.Config{IOThreads: 2})
	ln, err := e.Listen("127.0.0.1:0", &echo.Handler{Reads: 1},
		reactor.ListenOptions{ConnOptions: reactor.ConnOptions{TLS: p.server, HandshakeTimeout: 2 * time.Second}})
	if err != nil {
		f.Fatal(err)
	}
	addr := ln.Addr().String()
	lnFDs := int64(sock.ListenerFDs)
	src := testutil.RandomBytes(maxPayload+1, 21)
	cfg13 := p.client.Clone()
	cfg13.ServerName = "127.0.0.1"
	cfg13.MinVersion = tls.VersionTLS13
	cfg12 := cfg13.Clone()
	cfg12.MinVersion, cfg12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12

	f.Add([]byte{}, uint16(1000), false, uint16(0), byte(0))
	f.Add([]byte{0}, uint16(3000), false, uint16(0), byte(0))                          // one byte a write
	f.Add([]byte{4, 0x83, 0xc8, 17, 0x80, 2}, uint16(20000), true, uint16(0), byte(0)) // TLS 1.2, sleeps
	f.Add([]byte{2, 3, 0x7f, 0xff, 0}, uint16(17000), false, uint16(0), byte(0))
	f.Add([]byte{3, 5, 7}, uint16(300), false, uint16(3), byte(0x40)) // ClientHello length
	f.Add([]byte{}, uint16(8000), false, uint16(2500), byte(1))       // inside the application data
	f.Add([]byte{9, 0x81}, uint16(100), true, uint16(0), byte(0xff))  // record type
	f.Add([]byte{}, uint16(100), false, uint16(2), byte(0x01))        // record version: ignored

	f.Fuzz(func(t *testing.T, splits []byte, size uint16, tls12 bool, corruptAt uint16, mask byte) {
		if len(splits) > 4096 {
			splits = splits[:4096]
		}
		payload := src[:1+int(size)%maxPayload]
		cfg := cfg13
		if tls12 {
			cfg = cfg12
		}
		start := time.Now()
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		raw := nc.(*net.TCPConn)
		raw.SetDeadline(start.Add(hang))
		sc := &splitConn{TCPConn: raw, sizes: splits, corruptAt: int64(corruptAt), mask: mask}
		// Once the stream is corrupted, give TLS a moment to notice, then
		// end the client's sending side: whatever the server was waiting
		// for (the rest of a record whose length was corrupted) will not
		// come, and it must close.
		var dog *time.Timer
		var dogMu sync.Mutex
		sc.onCorrupt = func() {
			dogMu.Lock()
			dog = time.AfterFunc(watchdog, func() { raw.CloseWrite() })
			dogMu.Unlock()
		}
		defer func() {
			dogMu.Lock()
			if dog != nil {
				dog.Stop()
			}
			dogMu.Unlock()
		}()
		c := tls.Client(sc, cfg)
		werr := make(chan error, 1)
		go func() {
			_, err := c.Write(payload)
			werr <- err
		}()
		got := make([]byte, 0, len(payload))
		buf := make([]byte, 32<<10)
		var rerr error
		for len(got) < len(payload) {
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if len(got) > len(payload) || !bytes.Equal(got, payload[:len(got)]) {
				c.Close()
				t.Fatalf("wrong bytes accepted: %d bytes back differ from the %d sent (corrupted %v)",
					len(got), len(payload), sc.corrupted.Load())
			}
			if err != nil {
				rerr = err
				break
			}
		}
		if isTimeout(rerr) {
			c.Close()
			t.Fatalf("hang: no echo, error or close within %v (%d of %d bytes back, corrupted %v)",
				hang, len(got), len(payload), sc.corrupted.Load())
		}
		var wErr error
		select {
		case wErr = <-werr:
		case <-time.After(time.Until(start.Add(hang + time.Second))):
			c.Close()
			t.Fatalf("hang: client write still blocked after %v", hang)
		}
		if !sc.corrupted.Load() {
			if rerr != nil || wErr != nil {
				c.Close()
				t.Fatalf("clean stream failed after %d of %d bytes: read %v, write %v", len(got), len(payload), rerr, wErr)
			}
		}
		t.Logf("corrupted %v: %d of %d bytes back, read %v, write %v", sc.corrupted.Load(), len(got), len(payload), rerr, wErr)
		c.Close()
		// The server closes too (close_notify, an error or EOF), and
		// nothing of the connection is left.
		if !waitFor(3*time.Second, func() bool {
			s := e.Stats()
			return s.ConnsOpen == 0 && s.FDs == lnFDs && s.BuffersOut() == 0
		}) {
			s := e.Stats()
			t.Fatalf("engine not back to idle: conns open %d, fds %d (want the listener's %d), buffers out %d (corrupted %v, read %v)",
				s.ConnsOpen, s.FDs, lnFDs, s.BuffersOut(), sc.corrupted.Load(), rerr)
		}
	})
}

// addrRE matches the addresses in an error, to count errors by shape.
var addrRE = regexp.MustCompile(`[0-9.]+:[0-9]+`)

// failKind is one way an outbound connect fails.
type failKind int

const (
	failRefused  failKind = iota // a closed port
	failNotTLS                   // TLS to a server that answers in plain text
	failResetMid                 // the server resets during the handshake
	failKinds
)

func (k failKind) String() string {
	return [...]string{"refused", "not-TLS", "reset-mid-handshake"}[k]
}

// failDial is the handler of one outbound connect that must fail.
type failDial struct {
	kind   failKind
	opens  atomic.Int32
	reads  atomic.Int32
	closes atomic.Int32
	err    error  // OnClose's first, written before end
	end    func() // once: the connect reported its end
}

func (h *failDial) OnOpen(*reactor.Conn) { h.opens.Add(1) }
func (h *failDial) OnRead(_ *reactor.Conn, b *reactor.Buffer, _ error) {
	h.reads.Add(1)
	if b != nil {
		b.Release()
	}
}

func (h *failDial) OnClose(_ *reactor.Conn, err error) {
	if h.closes.Add(1) == 1 {
		h.err = err
		h.end()
	}
}

// plainServer accepts on a loopback port and hands each connection to
// serve, which must close it; stop closes the listener and waits.
func plainServer(t *testing.T, serve func(c *net.TCPConn)) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop = testutil.Serve(t, ln, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		serve(c.(*net.TCPConn))
	})
	return ln.Addr().String(), stop
}

// TestFailedOutboundConnectsLeakNoFDs: many outbound connects that fail
// (a closed port; TLS to a plain-text server; a reset in the middle of
// the handshake), 200 in flight. Each ends exactly once, in OnClose with
// a *DialError (or, for a refusal the kernel reports at once, in Dial's
// own error and no OnClose), and afterwards the process holds no more
// descriptors than before and the engine none at all.
func TestFailedOutboundConnectsLeakNoFDs(t *testing.T) {
	total := 10000
	if testing.Short() {
		total = 1000
	}
	const inFlight = 200
	// The connect bound is short so that the test can outwait every
	// connect timer it armed: one that fires for a connect already
	// reported must change nothing (no second OnClose, no second count).
	const connectTimeout = 3 * time.Second
	p := newTLSPair(t)
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})

	// A port nobody listens on: listened on, then closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	l.Close()
	notTLSAddr, stopNotTLS := plainServer(t, func(c *net.TCPConn) {
		defer c.Close()
		// The whole ClientHello is read, so that the close is an orderly
		// one (unread bytes would make it a reset).
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint16(hdr[3:]))); err != nil {
			return
		}
		c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n"))
	})
	resetAddr, stopReset := plainServer(t, func(c *net.TCPConn) {
		defer c.Close()
		io.ReadFull(c, make([]byte, 16)) // a few bytes of the ClientHello
		c.SetLinger(0)                   // the close sends a reset
	})
	addrs := [failKinds]string{closedAddr, notTLSAddr, resetAddr}
	fdsBefore := testutil.FDs()
	s0 := e.Stats()

	cfg := p.client.Clone()
	cfg.ServerName = "127.0.0.1"
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	hs := make([]*failDial, total)
	dialErrs := make([]error, total)
	start := time.Now()
	for i := range total {
		sem <- struct{}{}
		wg.Add(1)
		h := &failDial{kind: failKind(i % int(failKinds))}
		h.end = sync.OnceFunc(func() { <-sem; wg.Done() })
		hs[i] = h
		o := reactor.DialOptions{Timeout: connectTimeout}
		if h.kind != failRefused {
			o.TLS = cfg
			o.HandshakeTimeout = 10 * time.Second
		}
		if _, err := e.Dial(addrs[h.kind], h, o); err != nil {
			// Refused at once: no OnClose follows.
			dialErrs[i] = err
			h.end()
		}
	}
	lastDial := time.Now()
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(2 * time.Minute):
		var n [failKinds]int
		for _, h := range hs {
			if h.closes.Load() == 0 {
				n[h.kind]++
			}
		}
		s := e.Stats()
		t.Fatalf("connects that never reported their end (OnClose nor Dial error), by kind (refused, not-TLS, reset): %v; engine: conns open %d, fds %d, handshakes %+v, TLS failures %d",
			n, s.ConnsOpen, s.FDs, s.Handshakes, s.TLSFailures)
	}
	took := time.Since(start)
	// Every connect timer has fired or been stopped after this; a second
	// OnClose, or a second count, would have come by now.
	time.Sleep(time.Until(lastDial.Add(connectTimeout + 250*time.Millisecond)))

	var (
		byKind [failKinds]int
		atOnce [failKinds]int
		shapes [failKinds]map[string]int
		bad    int
	)
	for i, h := range hs {
		byKind[h.kind]++
		err := h.err
		calls := h.closes.Load()
		if dialErrs[i] != nil {
			atOnce[h.kind]++
			err = dialErrs[i]
			if calls != 0 {
				t.Errorf("dial %d (%v): Dial failed (%v) and OnClose came too", i, h.kind, dialErrs[i])
			}
		} else if calls != 1 {
			t.Errorf("dial %d (%v): %d OnClose calls, want 1", i, h.kind, calls)
		}
		if n := h.opens.Load(); n != 0 {
			t.Errorf("dial %d (%v): OnOpen called %d times on a connect that failed", i, h.kind, n)
		}
		if n := h.reads.Load(); n != 0 {
			t.Errorf("dial %d (%v): OnRead called %d times", i, h.kind, n)
		}
		var de *sock.DialError
		switch {
		case err == nil:
			t.Errorf("dial %d (%v): OnClose with a nil error", i, h.kind)
			bad++
		case !errors.As(err, &de):
			t.Errorf("dial %d (%v): error %T %v, want a *sock.DialError", i, h.kind, err, err)
			bad++
		}
		if err != nil {
			if shapes[h.kind] == nil {
				shapes[h.kind] = map[string]int{}
			}
			shapes[h.kind][addrRE.ReplaceAllString(err.Error(), "ADDR")]++
		}
		if bad > 10 {
			t.Fatal("too many failures")
		}
	}
	for k := range failKinds {
		t.Logf("%v: %d connects, %d refused by Dial itself; errors: %v", k, byKind[k], atOnce[k], shapes[k])
	}
	t.Logf("%d failed connects, %d in flight, in %v (%.0f/s)", total, inFlight, took.Round(time.Millisecond),
		float64(total)/took.Seconds())

	s := e.Stats()
	if got, want := (s.DialFailures-s0.DialFailures)+(s.TLSFailures-s0.TLSFailures), int64(total); got != want {
		t.Errorf("DialFailures %d + TLSFailures %d = %d, want one per connect (%d): a failure counted twice",
			s.DialFailures-s0.DialFailures, s.TLSFailures-s0.TLSFailures, got, want)
	}
	if s.TLSHandshakes != 0 {
		t.Errorf("TLSHandshakes %d, want 0", s.TLSHandshakes)
	}
	t.Logf("DialFailures %d, TLSFailures %d", s.DialFailures-s0.DialFailures, s.TLSFailures-s0.TLSFailures)
	if !waitFor(3*time.Second, func() bool {
		s := e.Stats()
		return s.FDs == 0 && s.ConnsOpen == 0 && s.BuffersOut() == 0
	}) {
		s := e.Stats()
		t.Errorf("engine holds fds %d, conns open %d, buffers out %d after every connect ended",
			s.FDs, s.ConnsOpen, s.BuffersOut())
	}
	stopNotTLS()
	stopReset()
	// The Go servers' listeners were opened after closedAddr's, before
	// the count: with them closed, the process is below it.
	if !waitFor(5*time.Second, func() bool { return testutil.FDs() <= fdsBefore }) {
		t.Errorf("descriptors %d, %d before the connects", testutil.FDs(), fdsBefore)
	}
}

// TestTLSCorruptRecordGetsAnAlert: a record corrupted after the handshake
// fails the engine's decryption; the peer gets the bad_record_mac alert
// (RFC 8446 §6.2) before the close, not a bare EOF, and the handler's
// OnClose names the TLS error.
func TestTLSCorruptRecordGetsAnAlert(t *testing.T) {
	p := newTLSPair(t)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			e := testutil.Engine(t, reactor.Config{IOThreads: 2})
			closed := make(chan error, 1)
			ln, err := e.Listen("127.0.0.1:0", &echo.Handler{Reads: 1, OnClosed: func(c *reactor.Conn, err error) { closed <- err }},
				reactor.ListenOptions{ConnOptions: reactor.ConnOptions{TLS: p.server}})
			if err != nil {
				t.Fatal(err)
			}
			raw := dial(t, ln.Addr().String())
			defer raw.Close()
			sc := &splitConn{TCPConn: raw}
			cfg := p.client.Clone()
			cfg.MinVersion, cfg.MaxVersion = v, v
			c := tls.Client(sc, cfg)
			if err := c.Handshake(); err != nil {
				t.Fatal(err)
			}
			sc.corruptAt, sc.mask = sc.off+20, 1 // inside the next record's body
			c.Write(make([]byte, 100))
			_, err = c.Read(make([]byte, 100))
			if err == nil || !strings.Contains(err.Error(), "bad record MAC") {
				t.Fatalf("client read %v, want the bad_record_mac alert", err)
			}
			if err := wait(t, closed, "OnClose"); err == nil || !strings.Contains(err.Error(), "sock: TLS") {
				t.Fatalf("OnClose got %v, want the TLS error", err)
			}
		})
	}
}
