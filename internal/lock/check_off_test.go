//go:build !lockcheck

package lock_test

import (
	"testing"

	"github.com/ioreactor/reactor/internal/lock"
)

// Without the tag the hooks are empty: an inversion, a nested class and
// an unheld unlock leave no report, no order, and allocate nothing.
func TestNoCheckWithoutTag(t *testing.T) {
	var a1, a2 lock.Mutex[classA]
	var b lock.Mutex[classB]
	allocs := testing.AllocsPerRun(10, func() {
		a1.Lock()
		b.Lock()
		b.Unlock()
		a1.Unlock()
		b.Lock()
		a1.Lock()
		a2.Lock()
		a2.Unlock()
		a1.Unlock()
		b.Unlock()
	})
	a1.Lock()
	done := make(chan struct{})
	go func() { a1.Unlock(); close(done) }()
	<-done
	if allocs != 0 {
		t.Errorf("Lock and Unlock allocate %v times a run", allocs)
	}
	if r := lock.Reports(); len(r) != 0 {
		t.Errorf("reports without the tag: %v", r)
	}
	if o := lock.Order(); o != nil {
		t.Errorf("orders without the tag: %v", o)
	}
	if lock.Enabled {
		t.Error("Enabled without the tag")
	}
}
