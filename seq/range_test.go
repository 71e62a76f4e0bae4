package seq_test

import (
	"math"
	"reflect"
	"testing"

	"github.com/ioreactor/reactor/seq"
)

// The tests in this file guard against the bug this package exists for: a
// counter generated as one integer type and consumed as another, which
// stalled a connection after 2^31 operations.

func TestGeneratorAndListShareOneType(t *testing.T) {
	number := reflect.TypeOf(seq.Number(0))
	checks := []struct {
		name string
		got  reflect.Type
	}{
		{"Generator.Next result", reflect.TypeOf((*seq.Generator).Next).Out(0)},
		{"Generator.Peek result", reflect.TypeOf((*seq.Generator).Peek).Out(0)},
		// In(0) of a method expression is the receiver.
		{"List.Put first parameter", reflect.TypeOf((*seq.List[int]).Put).In(1)},
		{"List.Expected result", reflect.TypeOf((*seq.List[int]).Expected).Out(0)},
		{"List[string].Put first parameter", reflect.TypeOf((*seq.List[string]).Put).In(1)},
		{"NewGenerator parameter", reflect.TypeOf(seq.NewGenerator).In(0)},
		{"NewList parameter", reflect.TypeOf(seq.NewList[int]).In(0)},
	}
	for _, c := range checks {
		if c.got != number {
			t.Errorf("%s is %v, want exactly %v", c.name, c.got, number)
		}
	}
	if number.Kind() != reflect.Uint32 {
		t.Errorf("Number is %v underneath, want uint32: the wrap rules assume 2^32", number.Kind())
	}
}

func TestGeneratorToListAcrossWrap(t *testing.T) {
	const count = 3000
	start := seq.Number(math.MaxUint32 - 1000)
	g := seq.NewGenerator(start)
	l := seq.NewList[seq.Number](start)
	r := newRand(t)

	// Issue in batches and complete each batch in a shuffled order, as
	// several I/O threads would.
	released := make(map[seq.Number]int, count)
	want := start
	issued := 0
	for issued < count {
		batch := make([]seq.Number, min(1+r.IntN(20), count-issued))
		for i := range batch {
			batch[i] = g.Next()
		}
		issued += len(batch)
		r.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		for _, n := range batch {
			if err := l.Put(n, n); err != nil {
				t.Fatalf("Put(%d) with Expected %d: %v", n, l.Expected(), err)
			}
			for {
				v, ok := l.Pop()
				if !ok {
					break
				}
				if v != want {
					t.Fatalf("released %d, want %d", v, want)
				}
				released[v]++
				want++
			}
		}
	}
	if l.Len() != 0 {
		t.Fatalf("%d items never released", l.Len())
	}
	if g.Peek() != l.Expected() {
		t.Fatalf("generator is at %d but list expects %d", g.Peek(), l.Expected())
	}
	if len(released) != count {
		t.Fatalf("released %d distinct items, want %d", len(released), count)
	}
	for n, times := range released {
		if times != 1 {
			t.Errorf("item %d released %d times", n, times)
		}
	}
	// As plain integers the end is below the start: the run wrapped.
	if g.Peek() >= start || !start.Before(g.Peek()) {
		t.Fatalf("run from %d to %d did not cross the wrap in order", start, g.Peek())
	}
}
