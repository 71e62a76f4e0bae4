package sock_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/pool"
)

// TestPacketSendsCostNoEvents: sending datagrams raises no events on the
// socket's thread. A UDP socket's write-space callback wakes its waiters
// for every datagram the kernel frees, so a standing registration for
// writable edges would cost an event per datagram (1,000 of 1,000 sends paced apart with
// EPOLLOUT|EPOLLET, measured); the socket asks for them only while
// datagrams are queued.
func TestPacketSendsCostNoEvents(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	h := &packetFuncs{onPacket: func(_ *reactor.PacketConn, b *pool.Buffer, _ netip.AddrPort) { b.Release() }, closed: make(chan error, 1)}
	p, err := e.ListenPacket("127.0.0.1:0", h, reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sink := udpPeer(t, "127.0.0.1")
	sink.setReadBuffer(1 << 20)
	events := func() (n uint64) {
		for _, th := range e.Stats().Threads {
			n += th.Events
		}
		return n
	}
	before := events()
	const sends = 300
	buf := make([]byte, 200)
	for i := range sends {
		if err := p.WriteTo(sink.addr(), buf[:100]); err != nil {
			t.Fatal(err)
		}
		// Apart enough that the thread, if woken, would see each send's
		// wake-up on its own (about 0.1 s in all).
		time.Sleep(50 * time.Microsecond)
		if i%50 == 49 { // drain, so the sink's buffer never drops
			for range 50 {
				if _, _, err := sink.recv(buf); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if d := events() - before; d > sends/10 {
		t.Errorf("%d events on the socket's thread for %d datagrams sent, want at most %d", d, sends, sends/10)
	}
}

// TestPacketFullSendBufferQueuesAndFlushesInOrder: a real full send
// buffer, with no hook. In a network namespace of its own, loopback is
// slowed by a token-bucket qdisc (80 Mbit/s), so sent datagrams stay
// charged to a 4 KiB send buffer until the qdisc lets them go: sendmsg
// meets EAGAIN, datagrams queue, and the kernel's writable edge flushes
// them. All 2,000 arrive whole and in order, none dropped.
func TestPacketFullSendBufferQueuesAndFlushesInOrder(t *testing.T) {
	if os.Getenv("REACTOR_KNOWN_DEFECTS") == "" {
		// Found 2026-11-27 (present since the test was written, at
		// 889741a too, on both backends): in about 1 run in 10, one
		// datagram is missing at the sink, with no drop counted by the
		// engine, the qdisc or UDP. Open, in docs/guarantees.md.
		t.Skip("known open defect: a datagram goes missing in about 1 run in 10 under a real full send buffer (docs/guarantees.md); REACTOR_KNOWN_DEFECTS=1 runs it")
	}
	// The test's thread enters the namespace and ends with the test's
	// goroutine (never unlocked), so no other goroutine runs in it; the
	// sockets made from it live in the namespace.
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Skipf("cannot make a network namespace (needs root or CAP_SYS_ADMIN): %v", err)
	}
	for _, args := range [][]string{{"ip", "link", "set", "lo", "up"},
		{"tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "80mbit", "burst", "16kb", "latency", "2s"}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Skipf("%v: %v: %s (iproute2, and the kernel's sch_tbf, are needed to slow loopback)", args, err, out)
		}
	}
	packetFullSendBuffer(t)
}

func packetFullSendBuffer(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	h := &packetFuncs{onPacket: func(_ *reactor.PacketConn, b *pool.Buffer, _ netip.AddrPort) { b.Release() }, closed: make(chan error, 1)}
	p, err := e.ListenPacket("127.0.0.1:0", h, reactor.PacketOptions{SendBuffer: 4096, WriteLimit: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	sink := udpPeer(t, "127.0.0.1")
	// Past net.core.rmem_max (root may, in its namespace), so the sink
	// drops nothing while the race detector slows its reading.
	raw, err := sink.c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) {
		if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20); err != nil {
			t.Errorf("SO_RCVBUFFORCE: %v", err)
		}
	})
	const count, size = 2000, 1000
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, 2*size)
		for i := range count {
			n, _, err := sink.recv(buf)
			if err != nil {
				got <- fmt.Errorf("datagram %d: %w", i, err)
				return
			}
			if n != size || binary.LittleEndian.Uint32(buf) != uint32(i) || !bytes.Equal(buf[4:n], bytes.Repeat([]byte{byte(i)}, size-4)) {
				got <- fmt.Errorf("datagram %d: %d bytes, #%d", i, n, binary.LittleEndian.Uint32(buf))
				return
			}
		}
		got <- nil
	}()
	msg := make([]byte, size)
	for i := range count {
		binary.LittleEndian.PutUint32(msg, uint32(i))
		for j := 4; j < size; j++ {
			msg[j] = byte(i)
		}
		if err := p.WriteTo(sink.addr(), msg); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
	}
	if err := testutil.Await(t, got, 30*time.Second, "the sink"); err != nil {
		t.Error(err)
		// What the kernel counted, for the open defect: UDP's and the
		// qdisc's drops (none so far).
		snmp, _ := os.ReadFile("/proc/thread-self/net/snmp")
		qd, _ := exec.Command("tc", "-s", "qdisc", "show", "dev", "lo").CombinedOutput()
		t.Logf("namespace's /proc/net/snmp:\n%s\nqdisc:\n%s", snmp, qd)
	}
	// The loop counts a flushed datagram after sendmsg returns, which can
	// be after the sink has read it.
	waitFor(5*time.Second, func() bool { return e.Stats().DatagramsOut == count })
	s := e.Stats()
	if s.DatagramsQueued == 0 || s.DatagramsDropped != 0 || s.DatagramsOut != count {
		t.Errorf("queued %d (0 would mean the send buffer never filled), dropped %d, out %d of %d", s.DatagramsQueued, s.DatagramsDropped, s.DatagramsOut, count)
	}
	t.Logf("%d of %d datagrams waited for a writable edge", s.DatagramsQueued, count)
}

// TestDialPacketCountsAnUnreachablePeer: a connected socket whose peer's
// port is closed gets each ICMP port unreachable back as ECONNREFUSED on
// its next receive: each is counted, and the socket stays open and
// usable, also past the 64 errors in a row that close a broken socket.
func TestDialPacketCountsAnUnreachablePeer(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	gone := udpPeer(t, "127.0.0.1")
	closed := gone.addr()
	gone.close()
	h := &packetFuncs{onPacket: func(_ *reactor.PacketConn, b *pool.Buffer, _ netip.AddrPort) { b.Release() }, closed: make(chan error, 1)}
	p, err := e.DialPacket(closed.String(), h, reactor.PacketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const writes = 80
	for i := range writes {
		if err := p.Write([]byte("anyone?")); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		// Each error is taken by the socket's receive before the next
		// write (which would otherwise be the one to report it).
		if s := statsWhen(e, func(s reactor.Stats) bool { return s.DatagramErrors == int64(i+1) }); s.DatagramErrors != int64(i+1) {
			t.Fatalf("after write %d: %d receive errors counted, want %d", i, s.DatagramErrors, i+1)
		}
	}
	s := e.Stats()
	if p.Closed() {
		t.Fatal("the socket closed over its peer's ICMP error")
	}
	t.Logf("receive errors counted: %d", s.DatagramErrors)
}
