package load_test

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/tests/bench/internal/load"
)

// startReactor serves echo on an engine of one I/O thread, in this process.
func startReactor(t *testing.T) string {
	t.Helper()
	e, err := reactor.New(reactor.Config{IOThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Shutdown(5 * time.Second); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	ln, err := e.Listen("127.0.0.1:0", &echo.Handler{Reads: 1}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ln.Addr().String()
}

// run drives the server for a short window and checks that replies came
// back, checked, and were counted.
func run(t *testing.T, cfg load.Config) load.Result {
	t.Helper()
	cfg.Warmup, cfg.Window = 200*time.Millisecond, 800*time.Millisecond
	if testing.Short() {
		cfg.Warmup, cfg.Window = 50*time.Millisecond, 200*time.Millisecond
	}
	cfg.ServerPID = os.Getpid()
	r, err := load.Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Messages == 0 || r.Bytes == 0 || r.P50 <= 0 || r.P99 < r.P50 || r.Elapsed < cfg.Window {
		t.Fatalf("nothing measured: %+v", r)
	}
	if r.ServerCPUTicks < 0 || r.ClientCPU <= 0 || r.ClientSleeps < 0 {
		t.Fatalf("CPU times or sleeps not read: %+v", r)
	}
	if r.SlowestShare <= 0 || r.SlowestShare > 1 {
		t.Errorf("slowest connection's share %v, want (0, 1]", r.SlowestShare)
	}
	t.Logf("%s: %.0f messages/s, %.1f MB/s, p50 %v, p99 %v, slowest connection %.0f%% of the mean",
		cfg.Mode, r.MessagesPerSec(), r.MBPerSec(), r.P50, r.P99, 100*r.SlowestShare)
	return r
}

// drivers are the client's ways to the kernel; every test runs on each.
var drivers = []load.Driver{load.DriverURing, load.DriverEpoll}

// eachDriver runs f as a subtest per driver. The ring driver's subtest
// skips only where the kernel has no io_uring.
func eachDriver(t *testing.T, f func(t *testing.T, d load.Driver)) {
	for _, d := range drivers {
		t.Run(string(d), func(t *testing.T) {
			if d == load.DriverURing && !ringAvailable() {
				t.Skip("this kernel has io_uring disabled or too old (Linux 6.1 or later is needed)")
			}
			f(t, d)
		})
	}
}

func ringAvailable() bool {
	p, err := poller.NewURing(poller.URingConfig{Entries: 8})
	if err != nil {
		return false
	}
	p.Close()
	return true
}

func TestPingPongAgainstReactor(t *testing.T) {
	eachDriver(t, func(t *testing.T, d load.Driver) {
		addr := startReactor(t)
		r := run(t, load.Config{Addr: addr, Driver: d, Mode: load.PingPong, Conns: 20, Size: 512, InFlight: 2})
		if r.Bytes != int64(r.Messages)*512 {
			t.Errorf("%d bytes for %d messages of 512", r.Bytes, r.Messages)
		}
		if r.Driver != d {
			t.Errorf("ran on %q, asked for %q", r.Driver, d)
		}
	})
}

// TestPingPongOverUnixSocket: the client drives a Unix-domain server
// ("unix:PATH") on both drivers, every reply checked.
func TestPingPongOverUnixSocket(t *testing.T) {
	eachDriver(t, func(t *testing.T, d load.Driver) {
		e, err := reactor.New(reactor.Config{IOThreads: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Shutdown(5 * time.Second) })
		ln, err := e.Listen("unix:"+filepath.Join(t.TempDir(), "load.sock"), &echo.Handler{Reads: 1}, reactor.ListenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r := run(t, load.Config{Addr: "unix:" + ln.Path(), Driver: d, Mode: load.PingPong, Conns: 20, Size: 64, InFlight: 2})
		if r.Bytes != int64(r.Messages)*64 {
			t.Errorf("%d bytes for %d messages of 64", r.Bytes, r.Messages)
		}
	})
}

// TestLargeMessagesArriveInPieces sends messages larger than the ring
// driver's buffers, so every reply arrives in several receives.
func TestLargeMessagesArriveInPieces(t *testing.T) {
	eachDriver(t, func(t *testing.T, d load.Driver) {
		addr := startReactor(t)
		r := run(t, load.Config{Addr: addr, Driver: d, Mode: load.PingPong, Conns: 4, Size: 100 << 10})
		if r.Bytes != int64(r.Messages)*100<<10 {
			t.Errorf("%d bytes for %d messages of 100 KiB", r.Bytes, r.Messages)
		}
	})
}

func TestStreamAgainstReactor(t *testing.T) {
	eachDriver(t, func(t *testing.T, d load.Driver) {
		addr := startReactor(t)
		run(t, load.Config{Addr: addr, Driver: d, Mode: load.Stream, Conns: 4, Size: 64 << 10})
	})
}

func TestIdleAgainstReactor(t *testing.T) {
	eachDriver(t, func(t *testing.T, d load.Driver) {
		addr := startReactor(t)
		r := run(t, load.Config{Addr: addr, Driver: d, Mode: load.Idle, Conns: 4, Size: 64, IdleConns: 300})
		if r.IdleOpen != 300 || r.RSSBeforeKiB <= 0 || r.RSSAfterKiB <= 0 {
			t.Errorf("idle connections: %d open, RSS %d then %d KiB", r.IdleOpen, r.RSSBeforeKiB, r.RSSAfterKiB)
		}
	})
}

// TestWindowAtDelaysTheWindow: a window start set past the warm-up holds
// the window back until then (two clients started together measure the
// same seconds), and the result says when the window started.
func TestWindowAtDelaysTheWindow(t *testing.T) {
	eachDriver(t, func(t *testing.T, d load.Driver) {
		addr := startReactor(t)
		const warmup, delay = 50 * time.Millisecond, 600 * time.Millisecond
		at := time.Now().Add(delay)
		r, err := load.Run(load.Config{Addr: addr, Driver: d, Mode: load.PingPong, Conns: 4, Size: 64,
			Warmup: warmup, Window: 200 * time.Millisecond, WindowAt: at})
		if err != nil {
			t.Fatal(err)
		}
		if r.WindowStart.Before(at) {
			t.Errorf("the window started %v before WindowAt", at.Sub(r.WindowStart))
		}
		// Set-up and warm-up take far less than the delay: the window
		// starts at WindowAt, give or take a loop turn (at most 100 ms of
		// waiting, more on a loaded machine).
		if late := r.WindowStart.Sub(at); late > 400*time.Millisecond {
			t.Errorf("the window started %v after WindowAt", late)
		}
		if r.Messages == 0 {
			t.Errorf("nothing measured: %+v", r)
		}
		// Without WindowAt the window follows the warm-up.
		before := time.Now()
		r, err = load.Run(load.Config{Addr: addr, Driver: d, Mode: load.PingPong, Conns: 4, Size: 64,
			Warmup: warmup, Window: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if r.WindowStart.Before(before.Add(warmup)) || r.WindowStart.After(before.Add(delay)) {
			t.Errorf("without WindowAt the window started %v after Run, want about the %v warm-up", r.WindowStart.Sub(before), warmup)
		}
	})
}

// badServer accepts connections on loopback and answers each with
// answer(request) for every request of size bytes (nil: hang up): the
// client must notice whatever is wrong with the answers.
func badServer(t *testing.T, size int, answer func(req []byte) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Serve(t, ln, func(c net.Conn) {
		defer c.Close()
		req := make([]byte, size)
		for {
			if _, err := io.ReadFull(c, req); err != nil {
				return
			}
			out := answer(req)
			if out == nil {
				return
			}
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	})
	return ln.Addr().String()
}

// TestWrongRepliesFail: a reply with a byte changed, a reply sent twice,
// and a server that hangs up each end the run with an error that says so.
func TestWrongRepliesFail(t *testing.T) {
	const size = 64
	cases := []struct {
		name   string
		answer func(req []byte) []byte
		want   string
	}{
		{"changed byte", func(req []byte) []byte {
			out := bytes.Clone(req)
			out[size-1] ^= 1
			return out
		}, "does not match"},
		{"echoed twice", func(req []byte) []byte { return append(bytes.Clone(req), req...) }, "does not match"},
		{"hang-up", func(req []byte) []byte { return nil }, "closed the connection"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eachDriver(t, func(t *testing.T, d load.Driver) {
				addr := badServer(t, size, tc.answer)
				_, err := load.Run(load.Config{Addr: addr, Driver: d, Mode: load.PingPong, Conns: 3, Size: size,
					Warmup: 100 * time.Millisecond, Window: 200 * time.Millisecond, SetupTimeout: 5 * time.Second})
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Run: %v, want an error saying %q", err, tc.want)
				}
				t.Log(err)
			})
		})
	}
}

func TestConfigRejected(t *testing.T) {
	for _, cfg := range []load.Config{
		{Addr: "127.0.0.1:1", Mode: load.PingPong, Conns: 1, Size: 8, Window: time.Second},
		{Addr: "127.0.0.1:1", Mode: "mystery", Conns: 1, Size: 64, Window: time.Second},
		{Addr: "127.0.0.1:1", Mode: load.PingPong, Conns: 0, Size: 64, Window: time.Second},
		{Addr: "127.0.0.1:1", Mode: load.PingPong, Conns: 1, Size: 64},
		{Addr: "localhost:1", Mode: load.PingPong, Conns: 1, Size: 64, Window: time.Second},
		{Addr: "127.0.0.1:1", Driver: "kqueue", Mode: load.PingPong, Conns: 1, Size: 64, Window: time.Second},
	} {
		if _, err := load.Run(cfg); err == nil {
			t.Errorf("Run(%+v) accepted", cfg)
		}
	}
}

func TestRefusedConnectionFails(t *testing.T) {
	eachDriver(t, func(t *testing.T, d load.Driver) {
		// Port 1 on loopback: nothing listens there in a test environment.
		_, err := load.Run(load.Config{Addr: "127.0.0.1:1", Driver: d, Mode: load.PingPong, Conns: 1, Size: 64,
			Window: time.Second, SetupTimeout: 5 * time.Second})
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("Run: %v, want the refused connect named", err)
		}
		t.Log(err)
	})
}

// TestDatagramPingPong: over connected UDP sockets, every reply (one
// datagram) is checked and counted, on both drivers; a server that
// answers with a changed datagram fails the run.
func TestDatagramPingPong(t *testing.T) {
	eachDriver(t, func(t *testing.T, d load.Driver) {
		e, err := reactor.New(reactor.Config{IOThreads: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Shutdown(5 * time.Second)
		p, err := e.ListenPacket("127.0.0.1:0", echo.Packet{}, reactor.PacketOptions{})
		if err != nil {
			t.Fatal(err)
		}
		run(t, load.Config{Addr: p.LocalAddr().String(), Mode: load.PingPong, Driver: d, Conns: 20, Size: 64, InFlight: 2, Datagram: true})

		bad := &packetFlip{}
		q, err := e.ListenPacket("127.0.0.1:0", bad, reactor.PacketOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = load.Run(load.Config{Addr: q.LocalAddr().String(), Mode: load.PingPong, Driver: d, Conns: 2, Size: 64,
			Datagram: true, Warmup: 50 * time.Millisecond, Window: 200 * time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Errorf("a server that changes a datagram: %v, want a mismatch", err)
		}
	})
}

// packetFlip answers with the datagram's last byte changed.
type packetFlip struct{}

func (*packetFlip) OnPacket(p *reactor.PacketConn, b *reactor.Buffer, from netip.AddrPort) {
	bs := b.Bytes()
	bs[len(bs)-1] ^= 0xff
	p.WriteBufferTo(from, b)
}

func (*packetFlip) OnClose(*reactor.PacketConn, error) {}
