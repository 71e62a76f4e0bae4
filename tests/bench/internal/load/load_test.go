package load_test

import (
	"os"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
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
	if r.ServerCPUTicks < 0 || r.ClientCPU <= 0 {
		t.Fatalf("CPU times not read: %+v", r)
	}
	if r.SlowestShare <= 0 || r.SlowestShare > 1 {
		t.Errorf("slowest connection's share %v, want (0, 1]", r.SlowestShare)
	}
	t.Logf("%s: %.0f messages/s, %.1f MB/s, p50 %v, p99 %v, slowest connection %.0f%% of the mean",
		cfg.Mode, r.MessagesPerSec(), r.MBPerSec(), r.P50, r.P99, 100*r.SlowestShare)
	return r
}

func TestPingPongAgainstReactor(t *testing.T) {
	addr := startReactor(t)
	r := run(t, load.Config{Addr: addr, Mode: load.PingPong, Conns: 20, Size: 512, InFlight: 2})
	if r.Bytes != int64(r.Messages)*512 {
		t.Errorf("%d bytes for %d messages of 512", r.Bytes, r.Messages)
	}
}

func TestStreamAgainstReactor(t *testing.T) {
	addr := startReactor(t)
	run(t, load.Config{Addr: addr, Mode: load.Stream, Conns: 4, Size: 64 << 10})
}

func TestIdleAgainstReactor(t *testing.T) {
	addr := startReactor(t)
	r := run(t, load.Config{Addr: addr, Mode: load.Idle, Conns: 4, Size: 64, IdleConns: 300})
	if r.IdleOpen != 300 || r.RSSBeforeKiB <= 0 || r.RSSAfterKiB <= 0 {
		t.Errorf("idle connections: %d open, RSS %d then %d KiB", r.IdleOpen, r.RSSBeforeKiB, r.RSSAfterKiB)
	}
}

func TestConfigRejected(t *testing.T) {
	for _, cfg := range []load.Config{
		{Addr: "127.0.0.1:1", Mode: load.PingPong, Conns: 1, Size: 8, Window: time.Second},
		{Addr: "127.0.0.1:1", Mode: "mystery", Conns: 1, Size: 64, Window: time.Second},
		{Addr: "127.0.0.1:1", Mode: load.PingPong, Conns: 0, Size: 64, Window: time.Second},
		{Addr: "127.0.0.1:1", Mode: load.PingPong, Conns: 1, Size: 64},
		{Addr: "localhost:1", Mode: load.PingPong, Conns: 1, Size: 64, Window: time.Second},
	} {
		if _, err := load.Run(cfg); err == nil {
			t.Errorf("Run(%+v) accepted", cfg)
		}
	}
}

func TestRefusedConnectionFails(t *testing.T) {
	// Port 1 on loopback: nothing listens there in a test environment.
	_, err := load.Run(load.Config{Addr: "127.0.0.1:1", Mode: load.PingPong, Conns: 1, Size: 64,
		Window: time.Second, SetupTimeout: 5 * time.Second})
	if err == nil {
		t.Fatal("a refused connect went unnoticed")
	}
	t.Log(err)
}
