package reactor_test

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
)

// BenchmarkPacketEchoRoundTrip measures one datagram through a UDP echo
// server and back, the client being Go's net: against the engine's
// datagram socket, and against Go's net with a goroutine reading and
// writing. Allocations are the whole process's, both clients included.
func BenchmarkPacketEchoRoundTrip(b *testing.B) {
	servers := []struct {
		name   string
		listen func(b *testing.B) netip.AddrPort
	}{
		{"reactor", func(b *testing.B) netip.AddrPort {
			e := testutil.Engine(b, reactor.Config{IOThreads: 1})
			p, err := e.ListenPacket("127.0.0.1:0", echo.Packet{}, reactor.PacketOptions{})
			if err != nil {
				b.Fatal(err)
			}
			return p.LocalAddr()
		}},
		{"net", func(b *testing.B) netip.AddrPort {
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 65536)
				for {
					n, from, err := c.ReadFromUDPAddrPort(buf)
					if err != nil {
						return
					}
					c.WriteToUDPAddrPort(buf[:n], from)
				}
			}()
			b.Cleanup(func() { c.Close(); <-done })
			return c.LocalAddr().(*net.UDPAddr).AddrPort()
		}},
	}
	for _, srv := range servers {
		for _, size := range []int{64, 1400, 16384} {
			b.Run(srv.name+"/"+byteSize(size), func(b *testing.B) {
				c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(srv.listen(b)))
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				msg := bytes.Repeat([]byte{'d'}, size)
				got := make([]byte, size+1)
				trip := func() {
					if _, err := c.Write(msg); err != nil {
						b.Fatal(err)
					}
					n, err := c.Read(got)
					if err != nil || n != size {
						b.Fatalf("echo: %d bytes, %v", n, err)
					}
				}
				for range 100 {
					trip()
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					trip()
				}
			})
		}
	}
}
