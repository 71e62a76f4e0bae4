package sock_test

import (
	"net/netip"
	"testing"
	"time"

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
