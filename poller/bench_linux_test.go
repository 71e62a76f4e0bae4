package poller_test

import (
	"testing"

	"github.com/ioreactor/reactor/poller"
)

// BenchmarkWaitWake measures a coalesced Wake and the Wait that drains it.
func BenchmarkWaitWake(b *testing.B) {
	p := newPoller(b)
	events := make([]poller.Event, 16)
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Wake(); err != nil {
			b.Fatal(err)
		}
		if n, err := p.Wait(events, 0); n != 0 || err != nil {
			b.Fatalf("Wait: %d, %v; want 0 events", n, err)
		}
	}
}

// BenchmarkWaitReady measures Wait on one level-triggered ready pipe.
func BenchmarkWaitReady(b *testing.B) {
	p, f := newPoller(b), newFDs(b)
	r, w := f.pipe()
	add(b, p, r, 7, poller.Readable)
	write(b, w, "x")
	events := make([]poller.Event, 16)
	b.ReportAllocs()
	for b.Loop() {
		if n, err := p.Wait(events, 0); n != 1 || err != nil {
			b.Fatalf("Wait: %d, %v; want 1 event", n, err)
		}
	}
}
