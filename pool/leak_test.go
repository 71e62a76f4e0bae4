package pool_test

import (
	"testing"

	"github.com/ioreactor/reactor/pool"
)

// TestOutstandingRecordsNothingWithoutTheTag: an ordinary build records
// no stacks (it pays nothing for the leak check) and says so.
func TestOutstandingRecordsNothingWithoutTheTag(t *testing.T) {
	p := pool.NewBuffers(0)
	b := p.Get()
	defer b.Release()
	if pool.LeakChecking() {
		if len(p.Outstanding()) != 1 {
			t.Fatalf("a bufleak build lists %d buffers, want 1", len(p.Outstanding()))
		}
		return
	}
	if p.Outstanding() != nil {
		t.Fatal("Outstanding recorded stacks without -tags bufleak")
	}
}
