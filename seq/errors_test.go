package seq_test

import (
	"errors"
	"math"
	"testing"

	"github.com/ioreactor/reactor/seq"
)

func TestListPutHeldIsDuplicate(t *testing.T) {
	l := seq.NewList[int](10)
	for _, n := range []seq.Number{10, 12} {
		if err := l.Put(n, 1); err != nil {
			t.Fatal(err)
		}
	}
	// 10 sits in the inline slot and 12 in the ring.
	for _, n := range []seq.Number{10, 12} {
		if err := l.Put(n, 2); !errors.Is(err, seq.ErrDuplicate) {
			t.Errorf("second Put(%d) = %v, want ErrDuplicate", n, err)
		}
	}
	if l.Len() != 2 {
		t.Fatalf("Len = %d after refused Puts, want 2", l.Len())
	}
	if v, ok := l.Pop(); !ok || v != 1 {
		t.Fatalf("Pop = %d, %v: a refused Put replaced the held item", v, ok)
	}
}

func TestListPutHeldInRingAtExpectedIsDuplicate(t *testing.T) {
	// Item 11 arrives out of order into the ring; once 10 is popped it is
	// the expected item, and a second 11 must still be refused.
	l := seq.NewList[int](10)
	for _, n := range []seq.Number{11, 10} {
		if err := l.Put(n, int(n)); err != nil {
			t.Fatal(err)
		}
	}
	if v, ok := l.Pop(); !ok || v != 10 {
		t.Fatalf("Pop = %d, %v, want 10, true", v, ok)
	}
	if err := l.Put(11, -1); !errors.Is(err, seq.ErrDuplicate) {
		t.Fatalf("Put(11) = %v, want ErrDuplicate", err)
	}
	if v, ok := l.Pop(); !ok || v != 11 {
		t.Fatalf("Pop = %d, %v, want 11, true", v, ok)
	}
}

func TestListPutReleasedIsDuplicate(t *testing.T) {
	start := seq.Number(math.MaxUint32 - 2)
	l := seq.NewList[int](start)
	for n := start; n != start+6; n++ {
		if err := l.Put(n, 0); err != nil {
			t.Fatal(err)
		}
		l.Pop()
	}
	for n := start; n != start+6; n++ {
		if err := l.Put(n, 0); !errors.Is(err, seq.ErrDuplicate) {
			t.Errorf("Put(%d) after release = %v, want ErrDuplicate", n, err)
		}
	}
	if l.Len() != 0 {
		t.Fatalf("Len = %d, want 0", l.Len())
	}
}

func TestListPutTooFar(t *testing.T) {
	const start = 1000
	l := seq.NewList[int](start)
	for i := range 3 {
		if err := l.Put(start+seq.Number(i), i); err != nil {
			t.Fatal(err)
		}
		l.Pop()
	}
	// Expected is 1003 and 1000..1002 are released. Anything else MaxAhead
	// or more ahead is refused, whether serial arithmetic still orders it
	// (less than 2^31 ahead) or not.
	cases := []seq.Number{
		1003 + seq.MaxAhead,
		1003 + seq.MaxAhead + 1,
		1003 + 1<<20,
		1003 + 1<<31 - 1,
		1003 + 1<<31,
		1003 + 1<<31 + 5,
		math.MaxUint32,
		0,
		999,
	}
	for _, n := range cases {
		if err := l.Put(n, 0); !errors.Is(err, seq.ErrTooFar) {
			t.Errorf("Put(%d) with Expected %d = %v, want ErrTooFar", n, l.Expected(), err)
		}
	}
	if l.Len() != 0 {
		t.Fatalf("Len = %d after refused Puts, want 0", l.Len())
	}
}

func TestListReleasedSaturatesAt2To31(t *testing.T) {
	// After 2^31 releases the whole half circle behind Expected has been
	// released, and stays so however many more follow. A plain counter
	// would wrap to zero after 2^32 and call those numbers ErrTooFar.
	const start = 100
	l := seq.NewList[int](start)
	l.SetReleased(1<<31 - 2)
	for i := range seq.Number(4) {
		if err := l.Put(start+i, 0); err != nil {
			t.Fatal(err)
		}
		l.Pop()
		if got, want := l.Released(), min(1<<31, 1<<31-2+uint32(i)+1); got != want {
			t.Fatalf("after %d more releases the count is %d, want %d", i+1, got, want)
		}
	}
	for _, b := range []uint32{1, 2, 1 << 30, 1<<31 - 1, 1 << 31} {
		n := l.Expected() - seq.Number(b)
		if err := l.Put(n, 0); !errors.Is(err, seq.ErrDuplicate) {
			t.Errorf("Put %d behind Expected = %v, want ErrDuplicate", b, err)
		}
	}
}

func TestListPutMaxAheadEdge(t *testing.T) {
	// MaxAhead-1 ahead is the farthest number the list accepts; it costs a
	// ring of MaxAhead slots, so use a one-byte T. Start near the wrap so
	// the window crosses it.
	start := seq.Number(math.MaxUint32 - 2)
	l := seq.NewList[bool](start)
	if err := l.Put(start+seq.MaxAhead-1, true); err != nil {
		t.Fatalf("Put MaxAhead-1 ahead = %v, want nil", err)
	}
	if got := l.RingLen(); got != seq.MaxAhead {
		t.Fatalf("ring holds %d slots after Put MaxAhead-1 ahead, want %d", got, seq.MaxAhead)
	}

	// MaxAhead ahead is refused and leaves the list as it was.
	if err := l.Put(start+seq.MaxAhead, true); !errors.Is(err, seq.ErrTooFar) {
		t.Fatalf("Put MaxAhead ahead = %v, want ErrTooFar", err)
	}
	if l.Len() != 1 || l.Expected() != start || l.RingLen() != seq.MaxAhead {
		t.Fatalf("after refused Put Len %d Expected %d ring %d, want 1, %d and %d",
			l.Len(), l.Expected(), l.RingLen(), start, seq.MaxAhead)
	}
	if _, ok := l.Pop(); ok {
		t.Fatal("Pop released an item before Expected arrived")
	}

	// Fill the gap: exactly MaxAhead items come out, the held one last.
	for n := start; n != start+seq.MaxAhead-1; n++ {
		if err := l.Put(n, false); err != nil {
			t.Fatalf("Put(%d) with Expected %d: %v", n, l.Expected(), err)
		}
	}
	for i := range seq.MaxAhead {
		v, ok := l.Pop()
		if !ok || v != (i == seq.MaxAhead-1) {
			t.Fatalf("Pop %d = %v, %v", i, v, ok)
		}
	}
	if _, ok := l.Pop(); ok || l.Len() != 0 || l.Expected() != start+seq.MaxAhead {
		t.Fatalf("after draining Len %d Expected %d, want 0 and %d: the refused item was stored",
			l.Len(), l.Expected(), start+seq.MaxAhead)
	}

	// A fresh list refuses without allocating a ring at all.
	f := seq.NewList[bool](start)
	if err := f.Put(start+seq.MaxAhead, true); !errors.Is(err, seq.ErrTooFar) {
		t.Fatalf("Put MaxAhead ahead on a fresh list = %v, want ErrTooFar", err)
	}
	if f.Len() != 0 || f.RingLen() != 0 {
		t.Fatalf("fresh list after refused Put has Len %d ring %d, want 0 and 0", f.Len(), f.RingLen())
	}
}
