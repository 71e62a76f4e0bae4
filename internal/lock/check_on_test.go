//go:build lockcheck

package lock_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ioreactor/reactor/internal/lock"
)

// checked clears the checker before and after the test: the reports a
// test seeds are its own, and must not fail the package.
func checked(t *testing.T) {
	t.Helper()
	lock.Reset()
	t.Cleanup(lock.Reset)
}

// on runs f on a goroutine of its own and waits for it.
func on(f func()) {
	var wg sync.WaitGroup
	wg.Go(f)
	wg.Wait()
}

// takeAA holds two locks of one class at once, which the checker reports.
func takeAA(a1, a2 *lock.Mutex[classA]) {
	a1.Lock()
	a2.Lock()
	a2.Unlock()
	a1.Unlock()
}

func takeAB(a *lock.Mutex[classA], b *lock.Mutex[classB]) {
	a.Lock()
	b.Lock()
	b.Unlock()
	a.Unlock()
}

func takeBA(a *lock.Mutex[classA], b *lock.Mutex[classB]) {
	b.Lock()
	a.Lock()
	a.Unlock()
	b.Unlock()
}

const (
	nameA = "lock_test.classA"
	nameB = "lock_test.classB"
	nameC = "lock_test.classC"
)

func TestLockCheckReportsInversion(t *testing.T) {
	checked(t)
	var a lock.Mutex[classA]
	var b lock.Mutex[classB]
	on(func() { takeAB(&a, &b) })
	on(func() { takeBA(&a, &b) })
	on(func() { takeBA(&a, &b) }) // seen again: not reported again
	rs := lock.Reports()
	if len(rs) != 1 {
		t.Fatalf("%d reports, want 1: %v", len(rs), rs)
	}
	r := rs[0]
	if r.Kind != lock.Cycle || strings.Join(r.Classes, " ") != nameA+" "+nameB || len(r.Stacks) != 2 {
		t.Fatalf("report %v %q with %d stacks, want a cycle of %s and %s with 2", r.Kind, r.Classes, len(r.Stacks), nameA, nameB)
	}
	for i, want := range []string{"lock_test.takeAB", "lock_test.takeBA"} {
		if !strings.Contains(r.Stacks[i], want) || !strings.Contains(r.Stacks[i], "TestLockCheckReportsInversion") {
			t.Errorf("stack %d lacks %s and the test's name:\n%s", i, want, r.Stacks[i])
		}
	}
	if strings.Contains(r.String(), "internal/lock.") {
		t.Errorf("the report shows the checker's own frames:\n%v", r)
	}
}

func TestLockCheckConsistentOrderIsSilent(t *testing.T) {
	checked(t)
	var a lock.Mutex[classA]
	var b lock.Mutex[classB]
	var c lock.Mutex[classC]
	for range 2 {
		on(func() { takeAB(&a, &b) })
		on(func() {
			a.Lock()
			b.Lock()
			c.Lock()
			c.Unlock()
			b.Unlock()
			a.Unlock()
		})
		on(func() { // released out of order, still one order
			b.Lock()
			c.Lock()
			b.Unlock()
			c.Unlock()
		})
	}
	if rs := lock.Reports(); len(rs) != 0 {
		t.Fatalf("reports for a consistent order: %v", rs)
	}
	var got []string
	for _, e := range lock.Order() {
		got = append(got, e.From+" → "+e.To)
	}
	want := []string{nameA + " → " + nameB, nameA + " → " + nameC, nameB + " → " + nameC}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("orders %q, want %q", got, want)
	}
}

func TestLockCheckReportsLongerCycle(t *testing.T) {
	checked(t)
	var a lock.Mutex[classA]
	var b lock.Mutex[classB]
	var c lock.Mutex[classC]
	on(func() { takeAB(&a, &b) })
	on(func() { b.Lock(); c.Lock(); c.Unlock(); b.Unlock() })
	on(func() { c.Lock(); a.Lock(); a.Unlock(); c.Unlock() })
	rs := lock.Reports()
	if len(rs) != 1 || rs[0].Kind != lock.Cycle || len(rs[0].Classes) != 3 || len(rs[0].Stacks) != 3 {
		t.Fatalf("reports %v, want one cycle of three classes", rs)
	}
	if got := strings.Join(rs[0].Classes, " "); got != nameA+" "+nameB+" "+nameC {
		t.Errorf("cycle %s, want %s %s %s", got, nameA, nameB, nameC)
	}
}

func TestLockCheckReportsSameClassHeldTwice(t *testing.T) {
	checked(t)
	var a1, a2 lock.Mutex[classA]
	on(func() { takeAA(&a1, &a2) })
	rs := lock.Reports()
	if len(rs) != 1 || rs[0].Kind != lock.Nested || rs[0].Same || len(rs[0].Stacks) != 2 {
		t.Fatalf("reports %v, want one of a class held twice, with two stacks", rs)
	}
	if rs[0].Classes[0] != nameA || !strings.Contains(rs[0].Stacks[1], "TestLockCheckReportsSameClassHeldTwice") {
		t.Errorf("report names %q, stack:\n%s", rs[0].Classes, rs[0].Stacks[1])
	}
}

// TestLockCheckReportsSelfDeadlockAfterNested: once two locks of a class
// held together were reported, one lock taken again by its holder (a
// self-deadlock, which then hangs) is still reported.
func TestLockCheckReportsSelfDeadlockAfterNested(t *testing.T) {
	checked(t)
	var a1, a2 lock.Mutex[classA]
	on(func() { takeAA(&a1, &a2) })
	done := make(chan struct{})
	go func() {
		defer close(done)
		a1.Lock()
		a1.Lock() // reported, then waits for the Unlock below
		a1.Unlock()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.ContainsFunc(lock.Reports(), func(r lock.Report) bool { return r.Kind == lock.Nested && r.Same }) {
		if time.Now().After(deadline) {
			t.Fatalf("no report of a lock taken again by its holder; reports %v", lock.Reports())
		}
		time.Sleep(time.Millisecond)
	}
	a1.Unlock() // frees the stuck goroutine (itself reported: not the holder)
	<-done
}

func TestLockCheckReportsUnlockOfLockNotHeld(t *testing.T) {
	checked(t)
	var a lock.Mutex[classA]
	var b lock.Mutex[classB]
	a.Lock()
	on(a.Unlock)
	// a's hold is forgotten: b taken now records no order under a.
	b.Lock()
	b.Unlock()
	rs := lock.Reports()
	if len(rs) != 1 || rs[0].Kind != lock.Unheld || rs[0].Classes[0] != nameA || len(rs[0].Stacks) != 2 {
		t.Fatalf("reports %v, want one unlock of %s not held, with two stacks", rs, nameA)
	}
	if o := lock.Order(); len(o) != 0 {
		t.Errorf("orders under a released lock: %v", o)
	}
}
