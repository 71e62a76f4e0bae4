package seq

import "math/bits"

// minRing is the ring's first capacity. Completions of one connection are
// rarely more than a few operations out of order.
const minRing = 8

// MaxAhead is the widest window the list accepts: [List.Put] refuses a
// number MaxAhead or more ahead of [List.Expected] with [ErrTooFar]. A
// connection never has anywhere near that many operations in flight, so a
// number further ahead is a bug in the caller, refused rather than allowed
// to allocate without bound. It also caps the ring at MaxAhead slots.
const MaxAhead = 1 << 16

// List releases items strictly in sequence order. Not safe for concurrent
// use: the owner holds its own lock.
//
// The zero value is an empty list expecting Number 0; Init makes it expect
// another number. An item is held until every item numbered before it has
// been popped. The list holds only numbers less than [MaxAhead] ahead of
// the expected one, so its memory is bounded by MaxAhead items of T
// however wrong a caller's numbers are.
type List[T any] struct {
	// expected is the number Pop releases next.
	expected Number

	// released counts the numbers popped since Init, saturating at 2^31: a
	// number up to released behind expected is a duplicate, one further
	// behind was never released and is really 2^31 or more ahead, so too
	// far.
	released uint32

	// head holds item expected when hasHead is set. A connection whose
	// completions arrive in order uses only this slot, so the common case
	// never touches the ring and never allocates.
	head T

	// r holds the other items, out of line so that a list that never sees
	// an item out of order costs one pointer (a connection embeds a List).
	r *ringBuf[T]

	// held counts the items in head and ring together, so that the fast
	// path tests one word to know the ring is empty. The ring never holds
	// more than MaxAhead items.
	held    uint32
	hasHead bool
}

// ringBuf holds out-of-order items: item n sits at slots[n&mask] and its
// presence bit is bit n&mask of present. Only numbers less than
// len(slots) ahead of expected are stored, so a slot names one number.
// len(slots) is a power of two no larger than MaxAhead; the ring is
// allocated on the first item that arrives out of order.
type ringBuf[T any] struct {
	slots   []T
	present []uint64
	mask    uint32
}

func (l *List[T]) ringLen() int {
	if l.r == nil {
		return 0
	}
	return len(l.r.slots)
}

// NewList returns an empty List whose first released item will be the one
// numbered start.
func NewList[T any](start Number) *List[T] {
	l := new(List[T])
	l.Init(start)
	return l
}

// Init empties the list and makes it expect start. It drops every held item
// and keeps the ring's storage for reuse.
func (l *List[T]) Init(start Number) {
	if l.r != nil {
		clear(l.r.slots)
		clear(l.r.present)
	}
	*l = List[T]{expected: start, r: l.r}
}

// Expected returns the number of the item Pop will release next.
func (l *List[T]) Expected() Number { return l.expected }

// Len returns the number of items held.
func (l *List[T]) Len() int { return int(l.held) }

// Put stores v as item n. It returns ErrDuplicate if n is held already or
// was already released (n before Expected), and ErrTooFar if n is neither
// and is [MaxAhead] or more ahead of Expected; on error the list is
// unchanged and allocates nothing.
//
// The ring grows to a power of two that covers n, so memory follows the
// distance, not the count: an item 1000 ahead of Expected costs a ring of
// 1024 slots of T, and the farthest accepted item, MaxAhead-1 ahead, a ring
// of MaxAhead slots.
func (l *List[T]) Put(n Number, v T) error {
	if n == l.expected && l.held == 0 {
		l.head, l.hasHead = v, true
		l.held = 1
		return nil
	}
	return l.putSlow(n, v)
}

func (l *List[T]) putSlow(n Number, v T) error {
	ahead := l.expected.Distance(n)
	if ahead >= MaxAhead {
		// Released numbers lie at most released <= 2^31 behind expected,
		// which is 2^31 or more ahead; any other number this far is too far.
		if n.Distance(l.expected) <= l.released {
			return ErrDuplicate
		}
		return ErrTooFar
	}
	if l.hasHead && ahead == 0 {
		return ErrDuplicate
	}
	if ahead >= uint32(l.ringLen()) {
		l.grow(ahead)
	}
	r := l.r
	i := uint32(n) & r.mask
	if r.present[i/64]&(1<<(i%64)) != 0 {
		return ErrDuplicate
	}
	if ahead == 0 {
		l.head, l.hasHead = v, true
	} else {
		r.slots[i] = v
		r.present[i/64] |= 1 << (i % 64)
	}
	l.held++
	return nil
}

// grow makes the ring large enough to hold a number ahead of expected,
// at least doubling it, and moves the held items to their new slots. As
// ahead < MaxAhead and the ring only grows when ahead >= len(ring), the new
// size never exceeds MaxAhead.
func (l *List[T]) grow(ahead uint32) {
	size := max(minRing, 2*l.ringLen(), 1<<bits.Len32(ahead))
	nr := &ringBuf[T]{
		slots:   make([]T, size),
		present: make([]uint64, (size+63)/64),
		mask:    uint32(size - 1),
	}
	if old := l.r; old != nil {
		for w, word := range old.present {
			for word != 0 {
				i := uint32(w*64 + bits.TrailingZeros64(word))
				word &= word - 1
				// Held numbers lie in [expected, expected+len(old.slots)),
				// so slot i holds the one number of that window that maps
				// to it.
				n := l.expected + Number((i-uint32(l.expected))&old.mask)
				j := uint32(n) & nr.mask
				nr.slots[j] = old.slots[i]
				nr.present[j/64] |= 1 << (j % 64)
			}
		}
	}
	l.r = nr
}

// Pop releases the item numbered Expected, if held, and advances Expected.
// It reports false, and leaves the list unchanged, when that item has not
// arrived. The list forgets the item so that the garbage collector can free
// what it points to.
func (l *List[T]) Pop() (T, bool) {
	if !l.hasHead {
		return l.popRing()
	}
	v := l.head
	var zero T
	l.head, l.hasHead = zero, false
	l.held--
	l.advance()
	return v, true
}

func (l *List[T]) popRing() (T, bool) {
	var zero T
	if l.held == 0 {
		return zero, false
	}
	r := l.r
	i := uint32(l.expected) & r.mask
	bit := uint64(1) << (i % 64)
	if r.present[i/64]&bit == 0 {
		return zero, false
	}
	v := r.slots[i]
	r.slots[i] = zero
	r.present[i/64] &^= bit
	l.held--
	l.advance()
	return v, true
}

func (l *List[T]) advance() {
	l.expected++
	// Adds 1 until bit 31 is set, then 0: saturates without a branch.
	l.released += ^l.released >> 31
}
