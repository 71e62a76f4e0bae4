package sock_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/pool"
	"github.com/ioreactor/reactor/sock"
)

// packetFuncs is a PacketHandler made of functions; OnClose reports on
// closed.
type packetFuncs struct {
	onPacket func(p *reactor.PacketConn, b *pool.Buffer, from netip.AddrPort)
	closed   chan error
}

func (h *packetFuncs) OnPacket(p *reactor.PacketConn, b *pool.Buffer, from netip.AddrPort) {
	h.onPacket(p, b, from)
}

func (h *packetFuncs) OnClose(p *reactor.PacketConn, err error) { h.closed <- err }

// packetEcho answers every datagram with itself, handing the buffer back
// (no copy).
func packetEcho() *packetFuncs {
	return &packetFuncs{
		onPacket: func(p *reactor.PacketConn, b *pool.Buffer, from netip.AddrPort) {
			if err := p.WriteBufferTo(from, b); err != nil {
				panic(err)
			}
		},
		closed: make(chan error, 1),
	}
}

// datagram i of a run: an 8-byte index, then bytes derived from it; size
// cycles through 0 to 1,471 (never 1..7, which cannot hold the index).
func datagram(i int) []byte {
	n := (i * 97) % 1472
	if n < 8 {
		return nil
	}
	b := make([]byte, n)
	binary.LittleEndian.PutUint64(b, uint64(i))
	for j := 8; j < n; j++ {
		b[j] = byte(i*31 + j)
	}
	return b
}

// exchange sends count datagrams to to, at most window unanswered, and
// checks that each answer equals a datagram sent and came from to. It
// returns how many came back. Loopback does not drop datagrams while the
// receive buffers have room, which the window keeps.
func exchange(t *testing.T, c *udpTestPeer, to netip.AddrPort, count, window int) int {
	t.Helper()
	sent := map[string]int{}
	buf := make([]byte, 70000)
	got, next := 0, 0
	deadline := time.Now().Add(20 * time.Second)
	for got < count && time.Now().Before(deadline) {
		for next < count && next-got < window {
			d := datagram(next)
			sent[string(d)]++
			if err := c.send(d, to); err != nil {
				t.Fatal(err)
			}
			next++
		}
		n, from, err := c.recv(buf)
		if err != nil {
			t.Fatalf("after %d of %d answers: %v", got, count, err)
		}
		if from != to {
			t.Fatalf("answer from %v, want %v", from, to)
		}
		if sent[string(buf[:n])] == 0 {
			t.Fatalf("answer %d (%d bytes) matches no datagram sent", got, n)
		}
		sent[string(buf[:n])]--
		got++
	}
	return got
}

// statsWhen returns the engine's counters once ok holds of them, or after
// five seconds, for the caller to report.
func statsWhen(e *reactor.Engine, ok func(reactor.Stats) bool) reactor.Stats {
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := e.Stats()
		if ok(s) || time.Now().After(deadline) {
			return s
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPacketEchoEveryDatagramWhole: 5,000 datagrams of 0 to 1,471 bytes
// (empty ones included) echoed on IPv4 and IPv6 loopback: each comes back
// whole, from the socket's address, and the engine's counters agree.
func TestPacketEchoEveryDatagramWhole(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			e := testutil.Engine(t, reactor.Config{IOThreads: 2})
			h := packetEcho()
			p, err := e.ListenPacket(net.JoinHostPort(host, "0"), h, reactor.PacketOptions{})
			if err != nil {
				t.Fatal(err)
			}
			const count = 5000
			if got := exchange(t, udpPeer(t, host), p.LocalAddr(), count, 32); got != count {
				t.Fatalf("%d of %d datagrams came back", got, count)
			}
			// The last echo can reach the peer before its sender counts it.
			s := statsWhen(e, func(s reactor.Stats) bool { return s.DatagramsOut == count })
			if s.DatagramsIn != count || s.DatagramsOut != count || s.DatagramsTruncated != 0 {
				t.Errorf("counters: in %d, out %d, truncated %d; want %d, %d, 0", s.DatagramsIn, s.DatagramsOut, s.DatagramsTruncated, count, count)
			}
			p.Close()
			if err := wait(t, h.closed, "OnClose"); err != nil {
				t.Errorf("OnClose after Close: %v, want nil", err)
			}
		})
	}
}

// TestPacketLargeDatagramsWholeOrDropped: with MaxDatagram at the UDP
// maximum a 65,000-byte datagram arrives whole (a chain of pooled
// buffers) and goes back whole; with the default (one buffer) it is
// dropped and counted, and the next small datagram is still delivered.
func TestPacketLargeDatagramsWholeOrDropped(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	big := testutil.RandomBytes(65000, 7)
	chains := make(chan int, 4)
	h := packetEcho()
	echo := h.onPacket
	h.onPacket = func(p *reactor.PacketConn, b *pool.Buffer, from netip.AddrPort) {
		k := 0
		for x := b; x != nil; x = x.Next() {
			k++
		}
		chains <- k
		echo(p, b, from)
	}
	p, err := e.ListenPacket("127.0.0.1:0", h, reactor.PacketOptions{MaxDatagram: sock.MaxDatagramSize})
	if err != nil {
		t.Fatal(err)
	}
	c := udpPeer(t, "127.0.0.1")
	if err := c.send(big, p.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 70000)
	n, _, err := c.recv(buf)
	if err != nil || !bytes.Equal(buf[:n], big) {
		t.Fatalf("65,000-byte datagram: %d bytes back, equal %t, %v", n, bytes.Equal(buf[:n], big), err)
	}
	if k, want := wait(t, chains, "OnPacket"), (65000+e.Buffers().Size()-1)/e.Buffers().Size(); k != want {
		t.Errorf("delivered in %d buffers, want %d", k, want)
	}

	small := packetEcho()
	q, err := e.ListenPacket("127.0.0.1:0", small, reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send(big, q.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if err := c.send([]byte("after"), q.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	n, _, err = c.recv(buf)
	if err != nil || string(buf[:n]) != "after" {
		t.Fatalf("after an oversized datagram: %q, %v; want \"after\"", buf[:n], err)
	}
	if s := e.Stats(); s.DatagramsTruncated != 1 {
		t.Errorf("DatagramsTruncated %d, want 1", s.DatagramsTruncated)
	}
}

// TestPacketWriteGathersOneDatagram: WriteTo's slices (3, and 40, more
// than one sendmsg gathers as they are) leave as one datagram each, in
// order; a destination of the wrong family and an oversized datagram are
// refused with their own errors and the socket goes on.
func TestPacketWriteGathersOneDatagram(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	h := &packetFuncs{onPacket: func(_ *reactor.PacketConn, b *pool.Buffer, _ netip.AddrPort) { b.Release() }, closed: make(chan error, 1)}
	p, err := e.ListenPacket("127.0.0.1:0", h, reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := udpPeer(t, "127.0.0.1")
	to := c.addr()
	var pieces [][]byte
	var whole []byte
	for i := range 40 {
		x := []byte(fmt.Sprintf("<%d>", i))
		pieces = append(pieces, x)
		whole = append(whole, x...)
	}
	if err := p.WriteTo(to, []byte("one "), []byte("two "), []byte("three")); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteTo(netip.MustParseAddrPort("[::1]:9"), []byte("x")); !errors.Is(err, sock.ErrAddressFamily) {
		t.Errorf("IPv6 destination from an IPv4 socket: %v, want ErrAddressFamily", err)
	}
	if err := p.WriteTo(to, make([]byte, sock.MaxDatagramSize+1)); !errors.Is(err, sock.ErrDatagramTooLarge) {
		t.Errorf("oversized datagram: %v, want ErrDatagramTooLarge", err)
	}
	if err := p.WriteTo(to, pieces...); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2000)
	for _, want := range [][]byte{[]byte("one two three"), whole} {
		n, from, err := c.recv(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], want) || from != p.LocalAddr() {
			t.Fatalf("got %q from %v, want %q from %v", buf[:n], from, want, p.LocalAddr())
		}
	}
}

// TestPacketQueueKeepsOrderAndLimit: sends that meet a full send buffer
// queue, later sends wait behind them, and the queue goes out in order
// once the socket can take it; past the write limit a datagram is
// refused whole and the socket stays usable.
func TestPacketQueueKeepsOrderAndLimit(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	h := &packetFuncs{onPacket: func(_ *reactor.PacketConn, b *pool.Buffer, _ netip.AddrPort) { b.Release() }, closed: make(chan error, 1)}
	const limit = 20 * 100
	p, err := e.ListenPacket("127.0.0.1:0", h, reactor.PacketOptions{WriteLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	c := udpPeer(t, "127.0.0.1")
	to := c.addr()
	var full atomic.Bool
	full.Store(true)
	// Datagrams of 101 bytes always find room: one of them, written while
	// others are queued, shows whether it waits behind them.
	defer sock.SetPacketFullHook(func(n int) bool { return full.Load() && n != 101 })()
	msg := func(i int) []byte {
		b := bytes.Repeat([]byte{byte(i)}, 100)
		binary.LittleEndian.PutUint32(b, uint32(i))
		return b
	}
	sent := 0
	var refused error
	for i := range 30 {
		if err := p.WriteTo(to, msg(i)); err != nil {
			refused = err
			break
		}
		sent++
	}
	var le *sock.WriteLimitError
	if sent != 20 || !errors.As(refused, &le) || le.Queued != limit || le.Limit != limit {
		t.Fatalf("queued %d datagrams, then %v; want 20 queued, then a *WriteLimitError at %d bytes", sent, refused, limit)
	}
	if q := p.QueuedBytes(); q != limit {
		t.Errorf("QueuedBytes %d, want %d", q, limit)
	}
	full.Store(false)
	sock.FlushPacket(p)
	buf := make([]byte, 200)
	receive := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			n, _, err := c.recv(buf)
			if err != nil {
				t.Fatalf("datagram %d: %v", i, err)
			}
			if !bytes.Equal(buf[:n], msg(i)) {
				t.Fatalf("datagram %d is #%d", i, binary.LittleEndian.Uint32(buf))
			}
		}
	}
	receive(0, sent)
	// A send that comes while datagrams are queued waits behind them, even
	// when the kernel could take it.
	full.Store(true)
	for range 5 {
		if err := p.WriteTo(to, msg(sent)); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	if err := p.WriteTo(to, msg(sent), []byte{0xff}); err != nil {
		t.Fatal(err)
	}
	sent++
	full.Store(false)
	sock.FlushPacket(p)
	receive(20, sent-1)
	if n, _, err := c.recv(buf); err != nil || n != 101 || !bytes.Equal(buf[:100], msg(sent-1)) {
		t.Fatalf("the datagram written behind the queue: %d bytes, %v", n, err)
	}
	if q := p.QueuedBytes(); q != 0 {
		t.Errorf("QueuedBytes after the flush: %d", q)
	}
	if s := statsWhen(e, func(s reactor.Stats) bool { return s.DatagramsOut == int64(sent) }); s.DatagramsQueued != int64(sent) || s.DatagramsOut != int64(sent) {
		t.Errorf("DatagramsQueued %d, DatagramsOut %d; want %d each (every one waited)", s.DatagramsQueued, s.DatagramsOut, sent)
	}
}

// TestPacketCloseWithQueueDropsAndCounts: closing a socket with datagrams
// queued returns their buffers, counts them dropped, and every operation
// after close fails with net.ErrClosed.
func TestPacketCloseWithQueueDropsAndCounts(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	h := &packetFuncs{onPacket: func(_ *reactor.PacketConn, b *pool.Buffer, _ netip.AddrPort) { b.Release() }, closed: make(chan error, 1)}
	p, err := e.ListenPacket("127.0.0.1:0", h, reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.SetPacketFullHook(func(int) bool { return true })()
	to := netip.MustParseAddrPort("127.0.0.1:9")
	for range 5 {
		if err := p.WriteTo(to, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, h.closed, "OnClose"); err != nil {
		t.Errorf("OnClose: %v, want nil", err)
	}
	<-p.Done()
	if err := p.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if err := p.WriteTo(to, []byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo after Close: %v", err)
	}
	b := e.Buffers().Get()
	if err := p.WriteBufferTo(to, b); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteBufferTo after Close: %v", err)
	}
	if s := e.Stats(); s.DatagramsDropped != 5 || s.BuffersOut() != 0 {
		t.Errorf("DatagramsDropped %d, buffers out %d; want 5, 0", s.DatagramsDropped, s.BuffersOut())
	}
}

// TestPacketPanicClosesOnlyThatSocket: a panicking OnPacket closes its
// socket with a *PanicError; another socket on the same thread goes on
// echoing.
func TestPacketPanicClosesOnlyThatSocket(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	bad := &packetFuncs{onPacket: func(_ *reactor.PacketConn, b *pool.Buffer, _ netip.AddrPort) {
		b.Release()
		panic("boom")
	}, closed: make(chan error, 1)}
	pb, err := e.ListenPacket("127.0.0.1:0", bad, reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	good := packetEcho()
	pg, err := e.ListenPacket("127.0.0.1:0", good, reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := udpPeer(t, "127.0.0.1")
	if err := c.send([]byte("x"), pb.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	var pe *sock.PanicError
	if err := wait(t, bad.closed, "OnClose"); !errors.As(err, &pe) || pe.Value != "boom" {
		t.Fatalf("OnClose after a panic: %v, want a *PanicError", err)
	}
	if got := exchange(t, c, pg.LocalAddr(), 200, 8); got != 200 {
		t.Fatalf("the other socket echoed %d of 200", got)
	}
	if s := e.Stats(); s.Panics != 1 {
		t.Errorf("Panics %d, want 1", s.Panics)
	}
}

// TestPacketPauseAndResume: after PauseReads (called from OnPacket)
// nothing more is delivered; the datagrams wait in the kernel and come,
// in order, after ResumeReads.
func TestPacketPauseAndResume(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	got := make(chan string, 16)
	h := &packetFuncs{onPacket: func(p *reactor.PacketConn, b *pool.Buffer, _ netip.AddrPort) {
		p.PauseReads() // before the test hears of it, which then resumes
		got <- string(b.Bytes())
		b.Release()
	}, closed: make(chan error, 1)}
	p, err := e.ListenPacket("127.0.0.1:0", h, reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := udpPeer(t, "127.0.0.1")
	for i := range 6 {
		if err := c.send([]byte{'a' + byte(i)}, p.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	if s := wait(t, got, "OnPacket"); s != "a" {
		t.Fatalf("first datagram %q", s)
	}
	select {
	case s := <-got:
		t.Fatalf("datagram %q delivered while paused", s)
	case <-time.After(100 * time.Millisecond):
	}
	for i := 1; i < 6; i++ {
		p.ResumeReads() // each delivery pauses again
		if s := wait(t, got, "OnPacket"); s != string(rune('a'+i)) {
			t.Fatalf("datagram %d is %q", i, s)
		}
	}
}

// TestPacketShutdownClosesIt: an engine's Shutdown closes a datagram
// socket left open: OnClose once, with nil.
func TestPacketShutdownClosesIt(t *testing.T) {
	e, err := reactor.New(testutil.WithTestBackend(reactor.Config{IOThreads: 1}))
	if err != nil {
		t.Fatal(err)
	}
	h := packetEcho()
	h.closed = make(chan error, 2)
	p, err := e.ListenPacket("127.0.0.1:0", h, reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := exchange(t, udpPeer(t, "127.0.0.1"), p.LocalAddr(), 10, 4); got != 10 {
		t.Fatalf("%d of 10 echoed", got)
	}
	if err := e.Shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, h.closed, "OnClose"); err != nil {
		t.Errorf("OnClose at shutdown: %v", err)
	}
	select {
	case err := <-h.closed:
		t.Errorf("a second OnClose: %v", err)
	default:
	}
	testutil.CheckZero(t, e)
}

// TestPacketManyWritersDatagramsWhole: 8 goroutines send 500 datagrams
// each through one socket: every datagram arrives whole and each
// writer's arrive in the order it sent them.
func TestPacketManyWritersDatagramsWhole(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	h := &packetFuncs{onPacket: func(_ *reactor.PacketConn, b *pool.Buffer, _ netip.AddrPort) { b.Release() }, closed: make(chan error, 1)}
	p, err := e.ListenPacket("127.0.0.1:0", h, reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := udpPeer(t, "127.0.0.1")
	c.setReadBuffer(4 << 20)
	to := c.addr()
	const writers, each = 8, 500
	var wg sync.WaitGroup
	var mu sync.Mutex
	pace := make(chan struct{}, 64) // bounds what is in flight, so loopback drops nothing
	for range 64 {
		pace <- struct{}{}
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				<-pace
				head := make([]byte, 8)
				binary.LittleEndian.PutUint32(head, uint32(w))
				binary.LittleEndian.PutUint32(head[4:], uint32(i))
				if err := p.WriteTo(to, head, bytes.Repeat([]byte{byte(w)}, 200+i%300)); err != nil {
					mu.Lock()
					t.Error(err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	next := make([]int, writers)
	buf := make([]byte, 1000)
	for n := 0; n < writers*each; n++ {
		k, _, err := c.recv(buf)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", n, err)
		}
		pace <- struct{}{}
		w, i := int(binary.LittleEndian.Uint32(buf)), int(binary.LittleEndian.Uint32(buf[4:]))
		if w >= writers || i != next[w] || k != 8+200+i%300 || !bytes.Equal(buf[8:k], bytes.Repeat([]byte{byte(w)}, k-8)) {
			t.Fatalf("datagram %d: writer %d message %d, %d bytes; want message %d of that writer, whole", n, w, i, k, next[min(w, writers-1)])
		}
		next[w]++
	}
	wg.Wait()
}

// TestPacketUnreachablePeerDoesNotStopReading: a datagram sent to a port
// nobody listens on draws an ICMP port unreachable; whatever the platform
// makes of it (nothing on Linux without IP_RECVERR; WSAECONNRESET on the
// next receive where SIO_UDP_CONNRESET cannot be turned off, as under
// Wine), the socket goes on reading and answering.
func TestPacketUnreachablePeerDoesNotStopReading(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	h := packetEcho()
	p, err := e.ListenPacket("127.0.0.1:0", h, reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gone := udpPeer(t, "127.0.0.1")
	closedPort := gone.addr()
	gone.close()
	c := udpPeer(t, "127.0.0.1")
	for i := range 20 {
		if err := p.WriteTo(closedPort, []byte("nobody")); err != nil {
			t.Fatalf("send %d to a closed port: %v", i, err)
		}
		if got := exchange(t, c, p.LocalAddr(), 5, 1); got != 5 {
			t.Fatalf("round %d: %d of 5 echoed", i, got)
		}
	}
	if s := e.Stats(); s.DatagramsIn != 100 {
		t.Errorf("DatagramsIn %d, want 100", s.DatagramsIn)
	}
	t.Logf("receive errors counted: %d", e.Stats().DatagramErrors)
}

// TestPacketAnswersFromOnPacketKeepOrder: what OnPacket sends goes out in
// the order it was sent, across a batch of arrivals (on Linux the loop
// gathers it into one sendmmsg); an answer that fails is dropped and
// counted and the others go; answers that meet a full send buffer queue
// and follow in order.
func TestPacketAnswersFromOnPacketKeepOrder(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	bad := netip.MustParseAddrPort("127.0.0.1:0") // no datagram can go to port 0
	h := &packetFuncs{onPacket: func(p *reactor.PacketConn, b *pool.Buffer, from netip.AddrPort) {
		k := string(b.Bytes())
		b.Release()
		for _, x := range []struct {
			to  netip.AddrPort
			msg string
		}{{from, k + "a"}, {bad, "lost"}, {from, k + "b"}} {
			if err := p.WriteTo(x.to, []byte(x.msg)); err != nil && x.to != bad {
				panic(err)
			}
		}
	}, closed: make(chan error, 1)}
	p, err := e.ListenPacket("127.0.0.1:0", h, reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := udpPeer(t, "127.0.0.1")
	buf := make([]byte, 100)
	expect := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			for _, s := range []string{"a", "b"} {
				n, _, err := c.recv(buf)
				if want := fmt.Sprintf("%03d%s", i, s); err != nil || string(buf[:n]) != want {
					t.Fatalf("got %q, %v; want %q", buf[:n], err, want)
				}
			}
		}
	}
	for i := range 50 {
		if err := c.send([]byte(fmt.Sprintf("%03d", i)), p.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	expect(0, 50)
	if s := statsWhen(e, func(s reactor.Stats) bool { return s.DatagramsDropped == 50 && s.DatagramsOut == 100 }); s.DatagramsDropped != 50 || s.DatagramsOut != 100 {
		t.Errorf("dropped %d, out %d; want 50 (the answers to port 0), 100", s.DatagramsDropped, s.DatagramsOut)
	}

	var full atomic.Bool
	full.Store(true)
	defer sock.SetPacketFullHook(func(int) bool { return full.Load() })()
	for i := 50; i < 60; i++ {
		if err := c.send([]byte(fmt.Sprintf("%03d", i)), p.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	statsWhen(e, func(s reactor.Stats) bool { return s.DatagramsIn == 60 })
	if q := p.QueuedBytes(); q == 0 {
		t.Errorf("no answer queued while the send buffer was full")
	}
	full.Store(false)
	sock.FlushPacket(p)
	expect(50, 60)
}

// TestDialPacketTalksToItsPeerOnly: a socket made by DialPacket sends to
// its peer with Write (from its own local address), receives what the
// peer answers, never what another socket sends it, and refuses a
// destination other than its peer; on IPv4 and IPv6.
func TestDialPacketTalksToItsPeerOnly(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			e := testutil.Engine(t, reactor.Config{IOThreads: 1})
			got := make(chan string, 16)
			from := make(chan netip.AddrPort, 16)
			h := &packetFuncs{onPacket: func(_ *reactor.PacketConn, b *pool.Buffer, f netip.AddrPort) {
				got <- string(b.Bytes())
				from <- f
				b.Release()
			}, closed: make(chan error, 1)}
			peer := udpPeer(t, host)
			p, err := e.DialPacket(peer.addr().String(), h, reactor.PacketOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if p.RemoteAddr() != peer.addr() {
				t.Errorf("RemoteAddr %v, want %v", p.RemoteAddr(), peer.addr())
			}
			if err := p.Write([]byte("hello "), []byte("peer")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			n, src, err := peer.recv(buf)
			if err != nil || string(buf[:n]) != "hello peer" || src.Port() != p.LocalAddr().Port() {
				t.Fatalf("the peer got %q from %v, %v; want \"hello peer\" from port %d", buf[:n], src, err, p.LocalAddr().Port())
			}
			other := udpPeer(t, host)
			if err := other.send([]byte("stranger"), src); err != nil {
				t.Fatal(err)
			}
			if err := peer.send([]byte("answer"), src); err != nil {
				t.Fatal(err)
			}
			if s := wait(t, got, "OnPacket"); s != "answer" {
				t.Fatalf("delivered %q, want only the peer's \"answer\"", s)
			}
			if f := <-from; f != peer.addr() {
				t.Errorf("answer from %v, want %v", f, peer.addr())
			}
			if err := p.WriteTo(other.addr(), []byte("x")); !errors.Is(err, sock.ErrPacketConnected) {
				t.Errorf("WriteTo another address: %v, want ErrPacketConnected", err)
			}
			select {
			case s := <-got:
				t.Errorf("the stranger's datagram was delivered: %q", s)
			case <-time.After(50 * time.Millisecond):
			}
		})
	}
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	h := packetEcho()
	if _, err := e.DialPacket("127.0.0.1:0", h, reactor.PacketOptions{}); err == nil {
		t.Error("DialPacket to port 0 succeeded")
	}
	l, err := e.ListenPacket("127.0.0.1:0", h, reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Write([]byte("x")); !errors.Is(err, sock.ErrPacketNotConnected) {
		t.Errorf("Write on a listening socket: %v, want ErrPacketNotConnected", err)
	}
}

// TestDialPacketMappedAddress: an IPv4-mapped address is dialled as the
// IPv4 address it maps.
func TestDialPacketMappedAddress(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	peer := udpPeer(t, "127.0.0.1")
	mapped := netip.AddrPortFrom(netip.AddrFrom16(peer.addr().Addr().As16()), peer.addr().Port())
	p, err := e.DialPacket(mapped.String(), packetEcho(), reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.RemoteAddr() != peer.addr() {
		t.Errorf("RemoteAddr %v, want %v", p.RemoteAddr(), peer.addr())
	}
	if err := p.Write([]byte("mapped")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, _, err := peer.recv(buf); err != nil || string(buf[:n]) != "mapped" {
		t.Fatalf("the peer got %q, %v", buf[:n], err)
	}
}

// TestPacketSharedPollerOneCallbackAtATime: with every I/O thread waiting
// on one shared poller, a socket's events reach several threads, and its
// callbacks still never overlap; every datagram is echoed whole. The
// socket's context is what SetContext stored.
func TestPacketSharedPollerOneCallbackAtATime(t *testing.T) {
	cfg := reactor.Config{IOThreads: 4, SharedPoller: true}
	if runtime.GOOS == "linux" {
		cfg.Backend = reactor.BackendEpoll // the one Linux backend with a shared poller
	}
	e := testutil.Engine(t, cfg)
	var inside, overlaps atomic.Int32
	type tag struct{ name string }
	h := packetEcho()
	echo := h.onPacket
	h.onPacket = func(p *reactor.PacketConn, b *pool.Buffer, from netip.AddrPort) {
		if inside.Add(1) > 1 {
			overlaps.Add(1)
		}
		if c, _ := p.Context().(*tag); c == nil || c.name != "shared" {
			overlaps.Add(100)
		}
		echo(p, b, from)
		inside.Add(-1)
	}
	p, err := e.ListenPacket("127.0.0.1:0", h, reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.SetContext(&tag{"shared"})
	if got := exchange(t, udpPeer(t, "127.0.0.1"), p.LocalAddr(), 8000, 32); got != 8000 {
		t.Errorf("%d of 8000 echoed", got)
	}
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d callbacks overlapped another, or saw the wrong context", n)
	}
}

// TestPacketChurnLeavesNothing: 300 datagram sockets, each bound, dialled
// by a connected one, echoing a few datagrams while another goroutine
// closes it mid-traffic: one OnClose each, and the engine ends with no
// descriptor, buffer or registration (testutil.Engine's end check).
func TestPacketChurnLeavesNothing(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	const cycles = 300
	closes := make(chan error, 2*cycles)
	for i := range cycles {
		srv := packetEcho()
		srv.closed = closes
		s, err := e.ListenPacket("127.0.0.1:0", srv, reactor.PacketOptions{})
		if err != nil {
			t.Fatal(err)
		}
		echoed := make(chan struct{}, 64)
		cli := &packetFuncs{onPacket: func(_ *reactor.PacketConn, b *pool.Buffer, _ netip.AddrPort) {
			b.Release()
			echoed <- struct{}{}
		}, closed: closes}
		c, err := e.DialPacket(s.LocalAddr().String(), cli, reactor.PacketOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for range 8 {
			if err := c.Write([]byte("churn")); err != nil {
				t.Fatal(err)
			}
		}
		<-echoed // one answer at least, then close both while the rest fly
		done := make(chan struct{})
		go func() {
			defer close(done)
			// These may fail: net.ErrClosed once c closes, or the peer's
			// ICMP port unreachable once s has (ECONNREFUSED).
			for range 8 {
				c.Write([]byte("late"))
			}
		}()
		if i%2 == 0 {
			s.Close()
			c.Close()
		} else {
			c.Close()
			s.Close()
		}
		<-done
		<-s.Done()
		<-c.Done()
	}
	for range 2 * cycles {
		if err := wait(t, closes, "OnClose"); err != nil {
			t.Errorf("OnClose after Close: %v", err)
		}
	}
	select {
	case err := <-closes:
		t.Errorf("more OnClose calls than sockets: %v", err)
	default:
	}
}

// TestPacketSurvivesErrorsShortOfTheBound: receives that fail with a
// transient error (injected: ENOMEM on Linux, WSAENOBUFS on Windows) one
// short of the bound in a row are counted and leave the socket open; the
// next datagram is delivered.
func TestPacketSurvivesErrorsShortOfTheBound(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	var left atomic.Int64
	left.Store(sock.PacketErrorRun - 1)
	defer sock.SetRecvErrHook(func() bool { return left.Add(-1) >= 0 })()
	got := make(chan []byte, 64)
	h := &packetFuncs{onPacket: func(_ *reactor.PacketConn, b *pool.Buffer, _ netip.AddrPort) {
		got <- append([]byte(nil), b.Bytes()...)
		b.Release()
	}, closed: make(chan error, 1)}
	p, err := e.ListenPacket("127.0.0.1:0", h, reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	peer := udpPeer(t, "127.0.0.1")
	// On Windows each failed receive drops the datagram it completed
	// with, so datagrams go until one arrives.
	var delivered []byte
	for i := 0; delivered == nil; i++ {
		if i == 500 {
			t.Fatal("no datagram delivered after 500 sends")
		}
		if err := peer.send([]byte("after the errors"), p.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		select {
		case delivered = <-got:
		case err := <-h.closed:
			t.Fatalf("the socket closed after %d errors in a row: %v", sock.PacketErrorRun-1, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if string(delivered) != "after the errors" {
		t.Errorf("delivered %q", delivered)
	}
	// The engine is the test's own: every error counted is an injected one
	// (on epoll some may come from the read the registration starts).
	if n := e.Stats().DatagramErrors; n != sock.PacketErrorRun-1 {
		t.Errorf("%d receive errors counted, want %d", n, sock.PacketErrorRun-1)
	}
	if p.Closed() {
		t.Error("the socket closed")
	}
}

// TestPacketClosesAfterTheErrorBound: receives that fail every time (a
// broken socket) close it once the bound is reached, with the error as
// the reason, instead of spinning.
func TestPacketClosesAfterTheErrorBound(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	defer sock.SetRecvErrHook(func() bool { return true })()
	h := &packetFuncs{onPacket: func(_ *reactor.PacketConn, b *pool.Buffer, _ netip.AddrPort) { b.Release() }, closed: make(chan error, 1)}
	p, err := e.ListenPacket("127.0.0.1:0", h, reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	peer := udpPeer(t, "127.0.0.1")
	var closedWith error
	for i := 0; closedWith == nil; i++ {
		if i == 500 {
			t.Fatal("the socket still open after 500 datagrams, each received with an error")
		}
		if err := peer.send([]byte("x"), p.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		select {
		case closedWith = <-h.closed:
		case <-time.After(10 * time.Millisecond):
		}
	}
	if !isTransientRecvErr(closedWith) {
		t.Errorf("closed with %v, want the injected receive error", closedWith)
	}
	if n := e.Stats().DatagramErrors; n < sock.PacketErrorRun {
		t.Errorf("%d receive errors counted before the close, want at least %d", n, sock.PacketErrorRun)
	}
}
