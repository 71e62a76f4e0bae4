package pool

import "time"

// Timer runs a function on its loop's I/O thread no earlier than its
// deadline. The owner embeds it and calls Init once; arming and stopping
// allocate nothing. A Timer is armed on at most one loop at a time.
//
// Slack: a timer fires when its loop next looks at the clock after the
// deadline. The loop computes its poller timeout from the earliest deadline
// rounded up to the next millisecond, so a timer fires at most about 1 ms
// plus the time the loop spends on one batch of events late.
type Timer struct {
	when  int64 // monotonic nanoseconds since the loop's epoch
	index int   // position in the heap; -1 when not armed
	loop  *Loop
	fn    func()
}

// Init sets the function the timer runs. Call it once, before Arm.
func (t *Timer) Init(fn func()) {
	t.fn = fn
	t.index = -1
}

// timerHeap is a binary min-heap on when. It is guarded by its loop's mutex.
type timerHeap []*Timer

func (h timerHeap) less(i, j int) bool { return h[i].when < h[j].when }

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h timerHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}

func (h *timerHeap) push(t *Timer) {
	t.index = len(*h)
	*h = append(*h, t)
	h.up(t.index)
}

func (h *timerHeap) remove(t *Timer) {
	old := *h
	i := t.index
	last := len(old) - 1
	if i != last {
		old.swap(i, last)
	}
	old[last] = nil
	*h = old[:last]
	if i != last {
		h.down(i)
		h.up(i)
	}
	t.index = -1
}

// ArmTimer (re)arms t to fire after d on loop l. Safe from any goroutine.
// A timer belongs to the first loop it is armed on, for life.
func (l *Loop) ArmTimer(t *Timer, d time.Duration) {
	if t.fn == nil {
		panic("pool: timer armed before Init")
	}
	when := l.now() + int64(d)
	l.mu.Lock()
	if t.loop != nil && t.loop != l {
		l.mu.Unlock()
		panic("pool: timer armed on two loops")
	}
	if t.index >= 0 {
		t.when = when
		l.timers.down(t.index)
		l.timers.up(t.index)
	} else {
		t.when = when
		t.loop = l
		l.timers.push(t)
	}
	first := l.timers[0] == t
	l.nTimers.Store(int64(len(l.timers)))
	l.mu.Unlock()
	if first {
		l.wake()
	}
}

// StopTimer disarms t. It reports whether t was armed; after it returns
// the timer's function does not start (it may be running already on the
// loop's thread if it had fired). Safe from any goroutine.
func (l *Loop) StopTimer(t *Timer) bool {
	l.mu.Lock()
	armed := t.index >= 0 && t.loop == l
	if armed {
		l.timers.remove(t)
		l.nTimers.Store(int64(len(l.timers)))
	}
	l.mu.Unlock()
	return armed
}

// runTimers fires the timers that are due and returns the number fired.
func (l *Loop) runTimers() int {
	if l.nTimers.Load() == 0 {
		return 0
	}
	fired := 0
	now := l.now()
	for {
		l.mu.Lock()
		if len(l.timers) == 0 || l.timers[0].when > now {
			l.mu.Unlock()
			return fired
		}
		t := l.timers[0]
		l.timers.remove(t)
		l.nTimers.Store(int64(len(l.timers)))
		l.mu.Unlock()
		fired++
		t.fn()
	}
}

// timeoutMillis converts the earliest deadline into a poller timeout:
// -1 when no timer is armed, rounded up so a timer never fires early.
// Called with l.mu held.
func (l *Loop) timeoutMillisLocked() int {
	if len(l.timers) == 0 {
		return -1
	}
	d := l.timers[0].when - l.now()
	if d <= 0 {
		return 0
	}
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}
