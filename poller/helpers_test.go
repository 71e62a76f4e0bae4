package poller_test

import (
	"testing"
	"time"

	"github.com/ioreactor/reactor/poller"
)

// Helpers every platform's poller tests share.

// guard bounds how long a test waits for something that must happen. It only
// turns a hang into a failure; no test asserts on speed.
const guard = 5 * time.Second

func newPoller(t testing.TB) *poller.Poller {
	t.Helper()
	p, err := poller.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// wait calls Wait once and fails the test on error.
func wait(t testing.TB, p *poller.Poller, msec int) []poller.Event {
	t.Helper()
	events := make([]poller.Event, 16)
	n, err := p.Wait(events, msec)
	if err != nil {
		t.Fatal(err)
	}
	return events[:n]
}

// waitDone waits for one completion and checks its token and operation.
func waitDone(t testing.TB, p *poller.Poller, token uint64, op poller.Op) poller.Event {
	t.Helper()
	deadline := time.Now().Add(guard)
	for time.Now().Before(deadline) {
		events := wait(t, p, 100)
		if len(events) == 0 {
			continue
		}
		if len(events) != 1 {
			t.Fatalf("got %d events %+v, want 1", len(events), events)
		}
		ev := events[0]
		if ev.Flags&poller.Done == 0 || ev.Token != token || ev.Op != op {
			t.Fatalf("got %+v, want completion of op %d with token %#x", ev, op, token)
		}
		return ev
	}
	t.Fatal("no completion")
	return poller.Event{}
}
