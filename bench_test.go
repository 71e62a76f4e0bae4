package reactor_test

import (
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
)

// BenchmarkEchoRoundTrip measures one message through the engine and back
// on one connection: the client (Go's net) writes, the engine reads and
// writes it back, the client reads it. Allocations are counted for the
// whole process, engine threads included; in steady state there are none.
func BenchmarkEchoRoundTrip(b *testing.B) {
	for _, size := range []int{64, 4096, 65536} {
		b.Run(byteSize(size), func(b *testing.B) {
			e := testutil.Engine(b, reactor.Config{IOThreads: 1})
			ln, err := e.Listen("127.0.0.1:0", &echo.Handler{}, reactor.ListenOptions{})
			if err != nil {
				b.Fatal(err)
			}
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Minute))
			msg := make([]byte, size)
			got := make([]byte, size)
			roundTrip := func() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, got); err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; i < 100; i++ { // warm the pools
				roundTrip()
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				roundTrip()
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
