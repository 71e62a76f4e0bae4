package seq_test

import (
	"math"
	"runtime"
	"testing"
	"weak"

	"github.com/ioreactor/reactor/seq"
)

func TestListInOrder(t *testing.T) {
	l := seq.NewList[seq.Number](100)
	for _, n := range window(100, 50) {
		putAll(t, l, []seq.Number{n})
		if got := popRun(t, l); got != 1 {
			t.Fatalf("after Put(%d) popped %d items, want 1", n, got)
		}
	}
	if l.Len() != 0 || l.Expected() != 150 {
		t.Fatalf("Len %d Expected %d, want 0 and 150", l.Len(), l.Expected())
	}
}

func TestListReversedReleasesAllAtTheEnd(t *testing.T) {
	const count = 100
	l := seq.NewList[seq.Number](math.MaxUint32 - 10)
	order := window(math.MaxUint32-10, count)
	for i := count - 1; i >= 0; i-- {
		putAll(t, l, order[i:i+1])
		if i > 0 {
			if got := popRun(t, l); got != 0 {
				t.Fatalf("popped %d items before item %d arrived", got, order[0])
			}
		}
		if got := l.Len(); got != count-i {
			t.Fatalf("Len = %d, want %d", got, count-i)
		}
	}
	if got := popRun(t, l); got != count {
		t.Fatalf("popped %d items, want %d", got, count)
	}
}

func TestListShuffledReleasesInOrder(t *testing.T) {
	r := newRand(t)
	const count = 5000
	l := seq.NewList[seq.Number](0)
	order := window(0, count)
	r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	popped := 0
	for i, n := range order {
		putAll(t, l, []seq.Number{n})
		popped += popRun(t, l)
		if popped+l.Len() != i+1 {
			t.Fatalf("after %d Puts popped %d and held %d", i+1, popped, l.Len())
		}
	}
	if popped != count || l.Len() != 0 {
		t.Fatalf("popped %d, held %d, want %d and 0", popped, l.Len(), count)
	}
}

// TestListShuffledWindowsAcrossWrap drives many small shuffled windows
// through the point where Number wraps, the way several I/O threads
// complete a connection's operations.
func TestListShuffledWindowsAcrossWrap(t *testing.T) {
	r := newRand(t)
	count := 1_000_000
	if testing.Short() {
		count = 20_000
	}
	start := seq.Number(math.MaxUint32 - 1000)
	l := seq.NewList[seq.Number](start)
	next := start
	popped := 0
	for popped < count {
		size := 1 + r.IntN(32)
		order := window(next, size)
		next += seq.Number(size)
		r.Shuffle(size, func(i, j int) { order[i], order[j] = order[j], order[i] })
		// Leave a few items of each window for the next one, so windows
		// overlap and the ring is seldom empty.
		keep := min(r.IntN(3), size-1)
		putAll(t, l, order[:size-keep])
		popped += popRun(t, l)
		putAll(t, l, order[size-keep:])
	}
	popped += popRun(t, l)
	if l.Len() != 0 {
		t.Fatalf("%d items still held", l.Len())
	}
	if want := int(start.Distance(next)); popped != want {
		t.Fatalf("popped %d items, want %d", popped, want)
	}
	if l.Expected() != next {
		t.Fatalf("Expected = %d, want %d", l.Expected(), next)
	}
}

func TestListPopEmpty(t *testing.T) {
	l := seq.NewList[string](3)
	if v, ok := l.Pop(); ok || v != "" {
		t.Fatalf("Pop on empty list = %q, %v", v, ok)
	}
	if err := l.Put(5, "five"); err != nil {
		t.Fatal(err)
	}
	if v, ok := l.Pop(); ok || v != "" {
		t.Fatalf("Pop with item 3 missing = %q, %v", v, ok)
	}
	if l.Expected() != 3 || l.Len() != 1 {
		t.Fatalf("Expected %d Len %d, want 3 and 1", l.Expected(), l.Len())
	}
}

func TestListZeroValueExpectsZero(t *testing.T) {
	var l seq.List[int]
	if err := l.Put(1, 10); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(0, 0); err != nil {
		t.Fatal(err)
	}
	for want := range 2 {
		v, ok := l.Pop()
		if !ok || v != want*10 {
			t.Fatalf("Pop = %d, %v, want %d, true", v, ok, want*10)
		}
	}
}

func TestListInitResets(t *testing.T) {
	l := seq.NewList[int](0)
	for _, n := range []seq.Number{3, 1, 0, 9} {
		if err := l.Put(n, int(n)); err != nil {
			t.Fatal(err)
		}
	}
	l.Init(50)
	if l.Len() != 0 || l.Expected() != 50 {
		t.Fatalf("after Init Len %d Expected %d, want 0 and 50", l.Len(), l.Expected())
	}
	if _, ok := l.Pop(); ok {
		t.Fatal("Pop released an item dropped by Init")
	}
	// Numbers released before Init are not duplicates of the new run.
	if err := l.Put(51, 51); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(50, 50); err != nil {
		t.Fatal(err)
	}
	for want := 50; want < 52; want++ {
		if v, ok := l.Pop(); !ok || v != want {
			t.Fatalf("Pop = %d, %v, want %d, true", v, ok, want)
		}
	}
}

// TestListPopForgetsItem checks that a popped item is no longer reachable
// from the list, from the inline slot and from the ring alike, so a
// connection's buffers are not kept alive by its completion queue.
func TestListPopForgetsItem(t *testing.T) {
	type buffer struct{ b [64]byte }
	l := seq.NewList[*buffer](0)
	var refs []weak.Pointer[buffer]
	put := func(n seq.Number) {
		b := new(buffer)
		refs = append(refs, weak.Make(b))
		if err := l.Put(n, b); err != nil {
			t.Fatal(err)
		}
	}
	put(0) // inline slot
	put(2) // ring
	put(1) // ring: item 0 still held
	for range 3 {
		if _, ok := l.Pop(); !ok {
			t.Fatal("Pop found nothing")
		}
	}
	runtime.GC()
	runtime.GC()
	for i, r := range refs {
		if r.Value() != nil {
			t.Errorf("item %d still reachable after Pop", i)
		}
	}
	runtime.KeepAlive(l)
}

// TestListInitForgetsItems checks that Init drops the items it held, in the
// ring as well as the inline slot, while it keeps the ring for reuse.
func TestListInitForgetsItems(t *testing.T) {
	type buffer struct{ b [64]byte }
	l := seq.NewList[*buffer](0)
	var refs []weak.Pointer[buffer]
	for _, n := range []seq.Number{3, 1, 0} {
		b := new(buffer)
		refs = append(refs, weak.Make(b))
		if err := l.Put(n, b); err != nil {
			t.Fatal(err)
		}
	}
	l.Init(0)
	runtime.GC()
	runtime.GC()
	for i, r := range refs {
		if r.Value() != nil {
			t.Errorf("item %d still reachable after Init", i)
		}
	}
	runtime.KeepAlive(l)
}
