package seq_test

import (
	"math"
	"testing"

	"github.com/ioreactor/reactor/seq"
)

func TestGeneratorZeroValueStartsAtZero(t *testing.T) {
	var g seq.Generator
	if got := g.Peek(); got != 0 {
		t.Fatalf("zero Generator Peek = %d, want 0", got)
	}
	for want := range seq.Number(5) {
		if got := g.Next(); got != want {
			t.Fatalf("Next = %d, want %d", got, want)
		}
	}
}

func TestGeneratorPeekDoesNotAdvance(t *testing.T) {
	g := seq.NewGenerator(7)
	for range 3 {
		if got := g.Peek(); got != 7 {
			t.Fatalf("Peek = %d, want 7", got)
		}
	}
	if got := g.Next(); got != 7 {
		t.Fatalf("Next = %d, want 7", got)
	}
	if got := g.Peek(); got != 8 {
		t.Fatalf("Peek after Next = %d, want 8", got)
	}
}

func TestGeneratorWraps(t *testing.T) {
	g := seq.NewGenerator(math.MaxUint32 - 1)
	want := []seq.Number{math.MaxUint32 - 1, math.MaxUint32, 0, 1}
	for _, w := range want {
		if got := g.Next(); got != w {
			t.Fatalf("Next = %d, want %d", got, w)
		}
	}
}
