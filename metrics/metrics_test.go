package metrics_test

import (
	"encoding/json"
	"errors"
	"expvar"
	"net"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/metrics"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// TestPublishShowsLiveCounters: the published expvar is the engine's
// Stats as JSON, read afresh: a connection opened after publishing shows
// in it, by name, as does the backend.
func TestPublishShowsLiveCounters(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	if err := metrics.Publish("reactor_test", e); err != nil {
		t.Fatal(err)
	}
	if err := metrics.Publish("reactor_test", e); !errors.Is(err, metrics.ErrNameTaken) {
		t.Fatalf("second Publish of a name: %v, want ErrNameTaken", err)
	}
	ln, err := e.Listen("127.0.0.1:0", &echo.Handler{Reads: 1}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	c.Read(make([]byte, 1))
	var s struct {
		Backend    string
		ConnsOpen  int64
		ConnsTotal int64
		Threads    []struct{ Events uint64 }
		Buffers    struct{ Allocated int64 }
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := json.Unmarshal([]byte(expvar.Get("reactor_test").String()), &s); err != nil {
			t.Fatal(err)
		}
		if s.ConnsOpen == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if s.ConnsOpen != 1 || s.ConnsTotal != 1 || len(s.Threads) != 2 || s.Buffers.Allocated == 0 || s.Backend != e.Backend().String() {
		t.Fatalf("published %+v", s)
	}
}
