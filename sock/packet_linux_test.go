package sock_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
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
// them. They leave in order: a tap on lo's transmit side sees 0 to 1,999
// in sequence. All 2,000 arrive whole, none dropped.
//
// The order is read at the device, not at the sink, because the kernel
// itself reorders past the device: the qdisc releases datagrams on
// whichever CPU its timer or a sender runs, loopback queues each on that
// CPU's backlog, and two backlogs deliver in either order (about 1 run in
// 10 under parallel load saw an adjacent pair swapped at the sink, with
// the tap's order intact; docs/datagrams.md).
func TestPacketFullSendBufferQueuesAndFlushesInOrder(t *testing.T) {
	ownLoopback(t)
	tbf := []string{"qdisc", "add", "dev", "lo", "root", "tbf", "rate", "80mbit", "burst", "16kb", "latency", "2s"}
	if out, err := exec.Command("tc", tbf...).CombinedOutput(); err != nil {
		t.Skipf("tc %v: %v: %s (iproute2, and the kernel's sch_tbf, are needed to slow loopback)", tbf, err, out)
	}
	packetFullSendBuffer(t, openTxTap(t))
}

func packetFullSendBuffer(t *testing.T, tap *txTap) {
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
	type arrival struct {
		order []uint32 // datagram numbers, in the order the sink read them
		err   error
	}
	got := make(chan arrival, 1)
	go func() {
		buf := make([]byte, 2*size)
		var a arrival
		seen := make([]bool, count)
		for i := range count {
			n, _, err := sink.recv(buf)
			if err != nil {
				a.err = fmt.Errorf("datagram %d of %d: %w", i, count, err)
				break
			}
			k := binary.LittleEndian.Uint32(buf)
			if n != size || k >= count || seen[k] || !bytes.Equal(buf[4:n], bytes.Repeat([]byte{byte(k)}, size-4)) {
				a.err = fmt.Errorf("datagram %d read: %d bytes, #%d (a repeat, or changed)", i, n, k)
				break
			}
			seen[k] = true
			a.order = append(a.order, k)
		}
		got <- a
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
	a := testutil.Await(t, got, 30*time.Second, "the sink")
	if a.err != nil {
		t.Error(a.err)
	}
	// Every datagram the sink read had been transmitted, so the tap has
	// them all by now.
	sent, err := tap.sentTo(sink.addr().Port())
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != count {
		t.Errorf("lo transmitted %d datagrams to the sink, want %d", len(sent), count)
	}
	for i, k := range sent {
		if k != uint32(i) {
			t.Errorf("lo transmitted #%d as the %dth datagram: the engine handed them to the kernel out of order (around it: %v)", k, i, sent[max(0, i-3):min(len(sent), i+4)])
			break
		}
	}
	if late := outOfPlace(a.order); len(late) > 0 {
		t.Logf("the kernel reordered after the device: %d datagrams read out of place at the sink (%v)", len(late), late)
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

// outOfPlace lists the positions (as "position:number") where order
// differs from 0, 1, 2, ...
func outOfPlace(order []uint32) (late []string) {
	for i, k := range order {
		if k != uint32(i) {
			late = append(late, fmt.Sprintf("%d:%d", i, k))
		}
	}
	return late
}

// txTap reads what lo transmits: a packet socket sees each packet as the
// device sends it, one at a time in the qdisc's order (the kernel's
// dev_queue_xmit_nit), which for a FIFO qdisc is the order the sender's
// sendmsg calls handed them over. Loopback also shows each packet again
// as received; only the outgoing copies are read. It listens for every
// protocol, since the kernel shows transmitted packets only to those.
type txTap struct{ fd int }

// openTxTap opens the tap on the calling thread's namespace's lo.
func openTxTap(t *testing.T) *txTap {
	all := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, all)
	if err != nil {
		t.Skipf("no packet socket to watch lo with: %v", os.NewSyscallError("socket", err))
	}
	t.Cleanup(func() { unix.Close(fd) })
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	// Both copies of 2,000 datagrams, about 4 KiB each as the kernel
	// charges them, fit with room to spare; PACKET_STATISTICS tells if not.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); err != nil {
		t.Fatal(os.NewSyscallError("setsockopt", err))
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: lo.Index}); err != nil {
		t.Fatal(os.NewSyscallError("bind", err))
	}
	return &txTap{fd}
}

// sentTo returns the first four bytes, little-endian, of each UDP datagram
// transmitted to port so far, in transmit order.
func (w *txTap) sentTo(port uint16) ([]uint32, error) {
	var sent []uint32
	buf := make([]byte, 2048)
	for {
		n, from, err := unix.Recvfrom(w.fd, buf, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			return nil, os.NewSyscallError("recvfrom", err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Pkttype != unix.PACKET_OUTGOING || ll.Protocol != htons(unix.ETH_P_IP) {
			continue
		}
		hl := int(buf[0]&0x0f) * 4 // the IPv4 header's length
		if n < hl+12 || buf[9] != unix.IPPROTO_UDP || binary.BigEndian.Uint16(buf[hl+2:]) != port {
			continue
		}
		sent = append(sent, binary.LittleEndian.Uint32(buf[hl+8:]))
	}
	st, err := unix.GetsockoptTpacketStats(w.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return nil, os.NewSyscallError("getsockopt", err)
	}
	if st.Drops > 0 {
		return nil, fmt.Errorf("the tap dropped %d packets: the transmit order is not known", st.Drops)
	}
	return sent, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

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
