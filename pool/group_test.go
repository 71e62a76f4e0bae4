package pool_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor/pool"
)

func newGroup(t *testing.T, cfg pool.Config) *pool.Group {
	t.Helper()
	g, err := pool.NewGroup(cfg, newPoller(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Error(err)
		}
	})
	return g
}

type taskFunc func(l *pool.Loop)

func (f taskFunc) RunTask(l *pool.Loop) { f(l) }

func TestPostRunsOnTheLoop(t *testing.T) {
	for _, shared := range []bool{false, true} {
		g := newGroup(t, pool.Config{Threads: 3, Shared: shared})
		for _, l := range g.Loops() {
			ran := make(chan *pool.Loop, 1)
			l.Post(taskFunc(func(on *pool.Loop) { ran <- on }))
			select {
			case on := <-ran:
				if on != l {
					t.Fatalf("shared=%v: task posted to loop %d ran on loop %d", shared, l.ID(), on.ID())
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("shared=%v: posted task never ran", shared)
			}
		}
	}
}

// TestTimerNeverEarly: a timer fires no earlier than its deadline, and
// within the documented slack (generous here: machines are shared).
func TestTimerNeverEarly(t *testing.T) {
	g := newGroup(t, pool.Config{Threads: 1})
	l := g.Loops()[0]
	for _, d := range []time.Duration{time.Millisecond, 7 * time.Millisecond, 30 * time.Millisecond} {
		fired := make(chan time.Time, 1)
		var tm pool.Timer
		tm.Init(func() { fired <- time.Now() })
		start := time.Now()
		l.ArmTimer(&tm, d)
		select {
		case at := <-fired:
			if at.Sub(start) < d {
				t.Fatalf("timer for %v fired after %v", d, at.Sub(start))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("timer for %v never fired", d)
		}
	}
}

func TestStoppedTimerDoesNotFire(t *testing.T) {
	g := newGroup(t, pool.Config{Threads: 1})
	l := g.Loops()[0]
	var fired atomic.Int32
	var tm pool.Timer
	tm.Init(func() { fired.Add(1) })
	l.ArmTimer(&tm, 20*time.Millisecond)
	if !l.StopTimer(&tm) {
		t.Fatal("StopTimer of an armed timer reported false")
	}
	if l.StopTimer(&tm) {
		t.Fatal("second StopTimer reported true")
	}
	time.Sleep(60 * time.Millisecond)
	if n := fired.Load(); n != 0 {
		t.Fatalf("stopped timer fired %d times", n)
	}
}

func TestTimersFireInDeadlineOrder(t *testing.T) {
	g := newGroup(t, pool.Config{Threads: 1})
	l := g.Loops()[0]
	order := make(chan int, 5)
	timers := make([]pool.Timer, 5)
	for i, d := range []int{50, 10, 40, 20, 30} {
		timers[i].Init(func() { order <- d })
		l.ArmTimer(&timers[i], time.Duration(d)*time.Millisecond)
	}
	prev := 0
	for i := 0; i < 5; i++ {
		select {
		case d := <-order:
			if d < prev {
				t.Fatalf("timer %d ms fired after %d ms", d, prev)
			}
			prev = d
		case <-time.After(5 * time.Second):
			t.Fatal("timers did not all fire")
		}
	}
}

func TestRoundRobinSpreads(t *testing.T) {
	g := newGroup(t, pool.Config{Threads: 4})
	seen := map[int]int{}
	for i := 0; i < 8; i++ {
		seen[g.Pick().ID()]++
	}
	for id := 0; id < 4; id++ {
		if seen[id] != 2 {
			t.Fatalf("round robin over 4 loops, 8 picks: %v", seen)
		}
	}
}

func TestLeastLoadedPicksEmptiest(t *testing.T) {
	g := newGroup(t, pool.Config{Threads: 3, Balancer: pool.LeastLoaded{}})
	loops := g.Loops()
	loops[0].AddLoad(5)
	loops[1].AddLoad(1)
	loops[2].AddLoad(3)
	if got := g.Pick(); got != loops[1] {
		t.Fatalf("LeastLoaded picked loop %d, want 1", got.ID())
	}
	loops[0].AddLoad(-5)
	loops[1].AddLoad(-1)
	loops[2].AddLoad(-3)
}

// TestStopRunsPostedTasks: tasks posted before Stop still run; Stop
// returns with every thread gone.
func TestStopRunsPostedTasks(t *testing.T) {
	g, err := pool.NewGroup(pool.Config{Threads: 2}, newPoller(pool.Config{Threads: 2}))
	if err != nil {
		t.Fatal(err)
	}
	var ran atomic.Int32
	for i := 0; i < 100; i++ {
		g.Pick().Post(taskFunc(func(*pool.Loop) { ran.Add(1) }))
	}
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := ran.Load(); n != 100 {
		t.Fatalf("%d of 100 posted tasks ran before Stop returned", n)
	}
}
