package sock

// fifo is a first-in first-out queue that reuses its slice: items[head:]
// are queued. A connection holds a pointer to one, made on first use, so
// that the many connections whose writes always complete at once pay one
// word for it.
type fifo[T any] struct {
	items []T
	head  int
}

func (q *fifo[T]) empty() bool { return q == nil || q.head == len(q.items) }

func (q *fifo[T]) front() T { return q.items[q.head] }

// len is how many items are queued.
func (q *fifo[T]) len() int {
	if q == nil {
		return 0
	}
	return len(q.items) - q.head
}

// at is the i-th queued item, 0 being the front.
func (q *fifo[T]) at(i int) T { return q.items[q.head+i] }

func (q *fifo[T]) push(v T) {
	if q.head > 0 && q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	q.items = append(q.items, v)
}

func (q *fifo[T]) pop() T {
	var zero T
	v := q.items[q.head]
	q.items[q.head] = zero
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return v
}
