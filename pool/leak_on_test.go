//go:build bufleak

package pool_test

import (
	"strings"
	"testing"

	"github.com/ioreactor/reactor/pool"
)

// takeAndForget takes a buffer and never releases it: the leak under test.
func takeAndForget(p *pool.Buffers) *pool.Buffer { return p.GetChain(1) }

// TestOutstandingNamesWhereALeakedBufferWasTaken: in a bufleak build a
// buffer not released is listed with the function that took it; once
// released it is not.
func TestOutstandingNamesWhereALeakedBufferWasTaken(t *testing.T) {
	if !pool.LeakChecking() {
		t.Fatal("a bufleak build that does not record")
	}
	p := pool.NewBuffers(0)
	b := takeAndForget(p)
	kept := p.Get()
	kept.Release()
	leaks := p.Outstanding()
	if len(leaks) != 1 || leaks[0].Buffer != b || !strings.Contains(leaks[0].Stack, "takeAndForget") {
		t.Fatalf("outstanding %+v, want the one buffer taken in takeAndForget", leaks)
	}
	if strings.Contains(leaks[0].Stack, "pool.(*Buffers).Get") {
		t.Fatalf("the stack shows the pool's own frames:\n%s", leaks[0].Stack)
	}
	b.Release()
	if leaks := p.Outstanding(); len(leaks) != 0 {
		t.Fatalf("%d outstanding after release", len(leaks))
	}
}
