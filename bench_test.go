package reactor_test

import (
	"crypto/tls"
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
			roundTrips(b, c, size)
		})
	}
}

// BenchmarkTLSEchoRoundTrip is BenchmarkEchoRoundTrip through TLS 1.3
// (the client is Go's crypto/tls), against two servers: the engine with
// its TLS filter, and Go's crypto/tls on net with a goroutine for the
// connection. Their ratio is what the filter costs beyond crypto/tls
// itself; allocations are the whole process's, both clients included.
func BenchmarkTLSEchoRoundTrip(b *testing.B) {
	certPEM, _, cert := testutil.SelfSigned(b, "127.0.0.1")
	serverCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	clientCfg := &tls.Config{RootCAs: testutil.CertPool(b, certPEM), ServerName: "127.0.0.1"}
	servers := []struct {
		name   string
		listen func(b *testing.B) string
	}{
		{"reactor", func(b *testing.B) string {
			e := testutil.Engine(b, reactor.Config{IOThreads: 1})
			ln, err := e.Listen("127.0.0.1:0", &echo.Handler{},
				reactor.ListenOptions{ConnOptions: reactor.ConnOptions{TLS: serverCfg}})
			if err != nil {
				b.Fatal(err)
			}
			return ln.Addr().String()
		}},
		{"net", func(b *testing.B) string {
			ln, err := tls.Listen("tcp", "127.0.0.1:0", serverCfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(testutil.Serve(b, ln, func(c net.Conn) {
				defer c.Close()
				io.Copy(c, c)
			}))
			return ln.Addr().String()
		}},
	}
	for _, srv := range servers {
		for _, size := range []int{64, 4096, 65536} {
			b.Run(srv.name+"/"+byteSize(size), func(b *testing.B) {
				c, err := tls.Dial("tcp", srv.listen(b), clientCfg)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				roundTrips(b, c, size)
			})
		}
	}
}

// roundTrips warms the pools with 100 round trips of size bytes on c, then
// times b.N of them, each checked byte for byte.
func roundTrips(b *testing.B, c net.Conn, size int) {
	c.SetDeadline(time.Now().Add(time.Minute))
	msg := make([]byte, size)
	got := make([]byte, size)
	for i := 0; i < 100; i++ {
		if err := testutil.RoundTrip(c, msg, got); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := testutil.RoundTrip(c, msg, got); err != nil {
			b.Fatal(err)
		}
	}
}

func byteSize(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
