package seq_test

import (
	"math/rand/v2"
	"testing"

	"github.com/ioreactor/reactor/seq"
)

// newRand returns a generator seeded from the test's name, so a failure
// replays with the same order.
func newRand(t testing.TB) *rand.Rand {
	var seed uint64
	for _, c := range t.Name() {
		seed = seed*31 + uint64(c)
	}
	return rand.New(rand.NewPCG(seed, 0x5eed))
}

// putAll stores every number in order, failing the test on any error.
func putAll(t testing.TB, l *seq.List[seq.Number], order []seq.Number) {
	t.Helper()
	for _, n := range order {
		if err := l.Put(n, n); err != nil {
			t.Fatalf("Put(%d) with Expected %d: %v", n, l.Expected(), err)
		}
	}
}

// popRun pops while items are ready and checks that each item is the one
// numbered as expected. It returns how many it popped.
func popRun(t testing.TB, l *seq.List[seq.Number]) int {
	t.Helper()
	popped := 0
	for {
		want := l.Expected()
		v, ok := l.Pop()
		if !ok {
			if l.Expected() != want {
				t.Fatalf("failed Pop moved Expected from %d to %d", want, l.Expected())
			}
			return popped
		}
		if v != want {
			t.Fatalf("Pop released item %d, want %d", v, want)
		}
		if got := l.Expected(); got != want.Next() {
			t.Fatalf("after Pop Expected is %d, want %d", got, want.Next())
		}
		popped++
	}
}

// window returns the count numbers from first, in order.
func window(first seq.Number, count int) []seq.Number {
	ns := make([]seq.Number, count)
	for i := range ns {
		ns[i] = first + seq.Number(i)
	}
	return ns
}
