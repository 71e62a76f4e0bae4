package seq_test

import (
	"testing"

	"github.com/ioreactor/reactor/seq"
)

func TestListInOrderDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage counters change allocation counts")
	}
	type completion struct {
		n     int
		bytes []byte
	}
	l := seq.NewList[completion](0)
	var g seq.Generator
	buf := make([]byte, 16)
	step := func() {
		n := g.Next()
		if err := l.Put(n, completion{int(n), buf}); err != nil {
			t.Fatal(err)
		}
		if _, ok := l.Pop(); !ok {
			t.Fatal("Pop found nothing")
		}
	}
	for range 10 {
		step()
	}
	if allocs := testing.AllocsPerRun(1000, step); allocs != 0 {
		t.Fatalf("in-order Put and Pop allocate %v times per item, want 0", allocs)
	}
}

func TestListOutOfOrderDoesNotAllocateAfterGrowth(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage counters change allocation counts")
	}
	l := seq.NewList[int](0)
	var g seq.Generator
	step := func() {
		// Complete a pair swapped: the second one waits in the ring.
		a, b := g.Next(), g.Next()
		if err := l.Put(b, 0); err != nil {
			t.Fatal(err)
		}
		if err := l.Put(a, 0); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, ok := l.Pop(); !ok {
				t.Fatal("Pop found nothing")
			}
		}
	}
	step()
	if allocs := testing.AllocsPerRun(1000, step); allocs != 0 {
		t.Fatalf("swapped pairs allocate %v times per pair once the ring exists, want 0", allocs)
	}
}
