package faults_test

import (
	"bytes"
	"crypto/tls"
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

// impairment says how the proxy mangles both directions of a stream.
type impairment struct {
	name string
	// segment bounds the bytes of each write the proxy makes; 1 sends a
	// byte at a time (Go sets TCP_NODELAY, so each is its own segment).
	// 0 forwards what each read returned.
	segment int
	// random makes each write 1 to segment bytes instead of segment.
	random bool
	// delay is slept before each write.
	delay time.Duration
	// stall pauses the direction for this long after each stallEvery
	// bytes.
	stall      time.Duration
	stallEvery int64
	// resetAt, when not 0, resets both sides (SO_LINGER 0, then close)
	// once this many bytes have gone from the client to the engine.
	resetAt int64
}

// impairedProxy sits on loopback between a client and the engine, built
// on Go's net so that it shares no code with the engine.
type impairedProxy struct {
	ln     net.Listener
	target string
	imp    impairment
	stop   func() // closes ln and waits for the relays
	resets atomic.Int32

	mu     sync.Mutex
	closed bool // by close: a relay that starts later closes its own
	conns  []net.Conn
}

// startProxy forwards connections on a new loopback port to target,
// impaired; it is closed when the test ends.
func startProxy(t *testing.T, target string, imp impairment) *impairedProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &impairedProxy{ln: ln, target: target, imp: imp}
	p.stop = testutil.Serve(t, ln, func(c net.Conn) { p.relay(c.(*net.TCPConn)) })
	// Cleanups run last in, first out: this one, before Serve's own, so
	// the relays' connections are closed before it waits for them.
	t.Cleanup(p.close)
	return p
}

func (p *impairedProxy) addr() string { return p.ln.Addr().String() }

// close closes the listener, then every relayed connection, and waits
// for the relays.
func (p *impairedProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.stop()
}

// relay connects one client to the target and pumps both directions;
// each direction passes on its end of stream as a half-close.
func (p *impairedProxy) relay(client *net.TCPConn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	server := s.(*net.TCPConn)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.conns = append(p.conns, client, server)
	p.mu.Unlock()
	var once sync.Once
	reset := func() {
		once.Do(func() {
			p.resets.Add(1)
			client.SetLinger(0)
			server.SetLinger(0)
			client.Close()
			server.Close()
		})
	}
	var both sync.WaitGroup
	both.Go(func() { p.pump(server, client, true, reset) })
	both.Go(func() { p.pump(client, server, false, reset) })
	both.Wait()
	client.Close()
	server.Close()
}

// pump copies src to dst with the proxy's impairment. upstream is the
// client-to-engine direction, the one a reset counts.
func (p *impairedProxy) pump(dst, src *net.TCPConn, upstream bool, reset func()) {
	imp := p.imp
	rng := rand.New(rand.NewPCG(uint64(imp.segment), map[bool]uint64{false: 1, true: 2}[upstream]))
	buf := make([]byte, 16<<10)
	var sent int64
	for {
		n, rerr := src.Read(buf)
		for b := buf[:n]; len(b) > 0; {
			k := len(b)
			if imp.segment > 0 {
				k = min(k, imp.segment)
				if imp.random {
					k = 1 + rng.IntN(k)
				}
			}
			if upstream && imp.resetAt > 0 {
				k = min(k, int(imp.resetAt-sent))
			}
			if imp.delay > 0 {
				time.Sleep(imp.delay)
			}
			if _, err := dst.Write(b[:k]); err != nil {
				reset()
				return
			}
			b = b[k:]
			if imp.stallEvery > 0 && (sent+int64(k))/imp.stallEvery != sent/imp.stallEvery {
				time.Sleep(imp.stall)
			}
			sent += int64(k)
			if upstream && imp.resetAt > 0 && sent >= imp.resetAt {
				reset()
				return
			}
		}
		switch {
		case rerr == io.EOF:
			dst.CloseWrite()
			return
		case rerr != nil:
			reset()
			return
		}
	}
}

// closeLog counts an echo listener's OnClose calls and keeps their
// reasons.
type closeLog struct {
	mu      sync.Mutex
	reasons []error
}

func (l *closeLog) add(_ *reactor.Conn, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reasons = append(l.reasons, err)
}

func (l *closeLog) get() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.reasons...)
}

// TestImpairedStreamsStayWhole streams through the engine's echo, both
// directions through an impairing proxy: 64 KiB each way in one-byte
// segments, 2 MiB in segments of 1 to 4,096 bytes each 100 µs late, 1 MiB
// paused 300 ms every 256 KiB, and TLS (a Go client) with 32 KiB in
// one-byte segments, handshake included; a quarter of that with -short.
// Every byte comes back, in order, then a clean end of stream, and the
// engine's connection closes once with no error. A reset after 1 and
// after 100,000 bytes: the engine's connection closes once, with an
// error, the client sees an error, and no buffer is left out.
func TestImpairedStreamsStayWhole(t *testing.T) {
	scale, oneByte := 1, 64<<10
	if testing.Short() {
		scale = 4
	}
	if underWine() {
		// Wine makes every socket call a round trip to its server: one-byte
		// segments ran at 3 KB/s, 64 KiB each way took 21 s.
		oneByte = 8 << 10
	}
	oneByte /= scale
	modes := []struct {
		imp  impairment
		size int
	}{
		{impairment{name: "one-byte segments", segment: 1}, oneByte},
		{impairment{name: "delays", segment: 4096, random: true, delay: 100 * time.Microsecond}, 2 << 20 / scale},
		{impairment{name: "stalls", stallEvery: 256 << 10 / int64(scale), stall: 300 * time.Millisecond}, 1 << 20 / scale},
	}
	for _, m := range modes {
		t.Run(m.imp.name, func(t *testing.T) {
			e := testutil.Engine(t, reactor.Config{IOThreads: 2})
			var closes closeLog
			ln, err := e.Listen("127.0.0.1:0", &echo.Handler{Reads: 1, OnClosed: closes.add}, reactor.ListenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p := startProxy(t, ln.Addr().String(), m.imp)
			c, err := net.Dial("tcp", p.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			if err := echoWhole(c, m.size, uint64(m.size), func() error { return c.(*net.TCPConn).CloseWrite() }); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d bytes each way in %v", m.size, time.Since(start).Round(time.Millisecond))
			expectOneClose(t, e, &closes, false)
		})
	}
	for _, at := range []int64{1, 100_000} {
		t.Run(fmt.Sprintf("reset at byte %d", at), func(t *testing.T) {
			if underWine() {
				t.Skip("Wine 8 closes a socket with SO_LINGER 0 with a FIN, not a reset (two Go sockets, no engine: the peer reads a clean EOF), so the proxy cannot reset")
			}
			const size = 1 << 20
			e := testutil.Engine(t, reactor.Config{IOThreads: 2})
			var closes closeLog
			ln, err := e.Listen("127.0.0.1:0", &echo.Handler{Reads: 1, OnClosed: closes.add}, reactor.ListenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p := startProxy(t, ln.Addr().String(), impairment{name: "reset", segment: 1000, delay: 100 * time.Microsecond, resetAt: at})
			c, err := net.Dial("tcp", p.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(testutil.RandomBytes(size, 9))
				werr <- err
			}()
			got, rerr := io.ReadAll(c)
			if rerr == nil {
				t.Errorf("the client read %d bytes and a clean end of stream; want an error after the reset", len(got))
			}
			if int64(len(got)) > at {
				t.Errorf("the client read %d bytes back, more than the %d that passed before the reset", len(got), at)
			}
			c.Close() // ends a write the reset did not fail yet
			<-werr
			expectOneClose(t, e, &closes, true)
			if n := p.resets.Load(); n != 1 {
				t.Errorf("the proxy reset %d times, want 1", n)
			}
			t.Logf("client: %d bytes back, then %v; engine: OnClose with %v", len(got), rerr, closes.get()[0])
		})
	}
	t.Run("TLS over one-byte segments", func(t *testing.T) {
		size := oneByte / 2
		certPEM, _, cert := testutil.SelfSigned(t, "127.0.0.1")
		e := testutil.Engine(t, reactor.Config{IOThreads: 2})
		var closes closeLog
		ln, err := e.Listen("127.0.0.1:0", &echo.Handler{Reads: 1, OnClosed: closes.add}, reactor.ListenOptions{
			ConnOptions: reactor.ConnOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		p := startProxy(t, ln.Addr().String(), impairment{name: "one-byte segments", segment: 1})
		raw, err := net.Dial("tcp", p.addr())
		if err != nil {
			t.Fatal(err)
		}
		c := tls.Client(raw, &tls.Config{RootCAs: testutil.CertPool(t, certPEM), ServerName: "127.0.0.1"})
		defer c.Close()
		start := time.Now()
		if err := echoWhole(c, size, 11, c.CloseWrite); err != nil {
			t.Fatal(err)
		}
		t.Logf("handshake and %d bytes each way in %v", size, time.Since(start).Round(time.Millisecond))
		expectOneClose(t, e, &closes, false)
		if s := e.Stats(); s.TLSHandshakes != 1 || s.TLSFailures != 0 {
			t.Errorf("TLS handshakes %d, failures %d; want 1 and 0", s.TLSHandshakes, s.TLSFailures)
		}
	})
}

// echoWhole writes size bytes on c from another goroutine, reads them
// back and compares, then shuts its write side with closeWrite and
// expects a clean end of stream from the echo.
func echoWhole(c net.Conn, size int, seed uint64, closeWrite func() error) error {
	c.SetDeadline(time.Now().Add(60 * time.Second))
	msg := testutil.RandomBytes(size, seed)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		werr <- err
	}()
	got := make([]byte, size)
	if n, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("reading the echo: %d of %d bytes: %w", n, size, err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if !bytes.Equal(got, msg) {
		i := 0
		for got[i] == msg[i] {
			i++
		}
		return fmt.Errorf("the echo differs from what was sent from byte %d of %d", i, size)
	}
	if err := closeWrite(); err != nil {
		return fmt.Errorf("shutting the write side: %w", err)
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		return fmt.Errorf("after the echo, %d more bytes and %v; want a clean end of stream", len(rest), err)
	}
	return nil
}

// expectOneClose waits for the engine's one OnClose, checks whether it
// had an error, that no second one follows and that the connection left
// no buffer behind.
func expectOneClose(t *testing.T, e *reactor.Engine, closes *closeLog, wantErr bool) {
	t.Helper()
	waitCond(t, 20*time.Second, "the engine's OnClose", func() bool { return len(closes.get()) > 0 })
	time.Sleep(50 * time.Millisecond) // room for a wrong second OnClose
	reasons := closes.get()
	if len(reasons) != 1 {
		t.Fatalf("%d OnClose calls, want 1: %v", len(reasons), reasons)
	}
	if got := reasons[0] != nil; got != wantErr {
		t.Errorf("OnClose with %v; want an error: %v", reasons[0], wantErr)
	}
	if s := e.Stats(); s.ConnsOpen != 0 || s.BuffersOut() != 0 {
		t.Errorf("after OnClose: %d connections open, %d buffers out", s.ConnsOpen, s.BuffersOut())
	}
}
