package metrics_test

import (
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
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

var raceRuns atomic.Int64

// TestPublishRaceGivesOneWinner: Publish calls racing for one name give
// one success and ErrNameTaken for the rest, never expvar's panic.
func TestPublishRaceGivesOneWinner(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	const n = 8
	// expvar cannot unpublish: a name of its own per run (-count).
	name := fmt.Sprintf("reactor_test_race_%d", raceRuns.Add(1))
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { errs <- metrics.Publish(name, e) })
	}
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, metrics.ErrNameTaken):
			t.Errorf("Publish: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d racing Publish calls succeeded, want 1", won, n)
	}
}
