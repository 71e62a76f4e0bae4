// Package lock is the one mutex the engine takes, and the lock-order
// checker behind it.
//
// Every lock in the engine is a Mutex[C]. C is the lock's class: an empty
// struct type declared for that one field (sock's connWmu for Conn.wmu),
// never stored, so a zero Mutex is ready to use and costs what a
// sync.Mutex costs. The order checker reasons about classes, not
// instances, as Linux's lockdep does: every connection's write lock is one
// class, so an order seen on one connection counts for all of them.
//
// Built with the lockcheck tag (CI runs the whole suite so), the checker
// records, per goroutine, the locks it holds, and each order in which two
// classes were taken (an edge From → To: To taken while From held), with
// the stack of its first occurrence. It reports, without the deadlock
// having to happen:
//
//   - a cycle of orders: A → B recorded somewhere and now B → A (or a longer
//     cycle), which two goroutines following them could turn into a
//     deadlock; the report holds the stack of each order;
//   - a lock taken while its goroutine holds another of the same class
//     (two connections' write locks at once: A-then-B on one goroutine,
//     B-then-A on another would deadlock), or the same lock again, which
//     deadlocks at once;
//   - an Unlock of a lock its goroutine does not hold.
//
// Each report is printed to standard error once and kept for Reports;
// internal/testutil.Main fails a test package that made any. There is no
// TryLock: the engine does not use one.
//
// Without the tag nothing is recorded: Lock and Unlock test the constant
// Enabled first, and since the inliner counts only the branch a constant
// takes, each inlines to sync.Mutex's own fast path
// (TestLockAndUnlockInline asks the compiler; BenchmarkLockUnlock against
// BenchmarkSyncMutex times them). Both builds
// implement the same list of hooks, check_on.go with the checker,
// check_off.go with empty bodies:
//
//	const Enabled bool
//	type ticket                                       // what willLock hands to locked
//	func willLock[C Class](m *sync.Mutex) ticket      // before waiting: record and check orders
//	func locked(m *sync.Mutex, t ticket)              // after taking: m is held
//	func willUnlock[C Class](m *sync.Mutex)           // before releasing: m must be held
//	func Order() []Edge                               // the orders seen so far
//	func reset()                                      // forget everything (tests)
//
// The checker knows a goroutine by the address of the runtime's
// descriptor of it, read in assembly on amd64 and arm64 (goid_asm.go;
// elsewhere the id parsed from runtime.Stack, far slower). It costs
// about a microsecond a Lock, mostly the walk of a few frames of the
// stack kept with each held lock; an order's stack is walked to its
// depth only the first time the order is seen. Its own bookkeeping is
// guarded by a plain sync.Mutex, and it calls nothing that takes a
// Mutex, so it can neither recurse nor take part in a deadlock it
// watches.
package lock

import (
	"fmt"
	"os"
	"strings"
	"sync"
)

// Class is the constraint on a lock's class: an empty struct type that
// names one lock field. Its name, as reflect prints it ("sock.connWmu"),
// is the class's name in reports.
type Class interface{ ~struct{} }

// Mutex is a sync.Mutex of class C. The zero value is an unlocked mutex.
// It implements sync.Locker, so a sync.Cond can wait on it. Like a
// sync.Mutex it must not be copied after first use.
type Mutex[C Class] struct {
	mu sync.Mutex
}

// Lock locks m, waiting until it is free.
func (m *Mutex[C]) Lock() {
	if !Enabled {
		m.mu.Lock()
		return
	}
	t := willLock[C](&m.mu)
	m.mu.Lock()
	locked(&m.mu, t)
}

// Unlock unlocks m.
func (m *Mutex[C]) Unlock() {
	if !Enabled {
		m.mu.Unlock()
		return
	}
	willUnlock[C](&m.mu)
	m.mu.Unlock()
}

// An Edge is one lock order: To was taken while From was held.
type Edge struct {
	From, To string
	// Stack is where To was first taken under From, symbolized, innermost
	// call first.
	Stack string
}

// Kind says what a Report found.
type Kind uint8

const (
	// Cycle: the orders in Report.Classes close a cycle, so goroutines
	// following them at the same time could deadlock.
	Cycle Kind = iota + 1
	// Nested: a goroutine took a lock of a class it already held.
	Nested
	// Unheld: a goroutine unlocked a lock it did not hold.
	Unheld
)

func (k Kind) String() string {
	switch k {
	case Cycle:
		return "lock order cycle"
	case Nested:
		return "lock of a class already held"
	case Unheld:
		return "unlock of a lock not held"
	}
	return fmt.Sprintf("lock.Kind(%d)", k)
}

// A Report is one potential deadlock or misuse the checker saw.
type Report struct {
	Kind Kind
	// Classes: for a Cycle, the classes around it, each taken while the
	// one before it was held, the first after the last; for Nested and
	// Unheld, the one class.
	Classes []string
	// Stacks, innermost call first. For a Cycle, Stacks[i] is where
	// Classes[i+1] was taken under Classes[i] (the last one closes the
	// cycle: it is the order seen now). For Nested: where the held lock
	// was taken, then where the second was. For Unheld: where the unlock
	// was, then where the lock was taken if another goroutine held it.
	Stacks []string
	// Same: a Nested report is of one lock taken twice, which deadlocks
	// at once rather than potentially.
	Same bool
}

func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lockcheck: %v: %s\n", r.Kind, strings.Join(r.Classes, ", "))
	for i, s := range r.Stacks {
		switch r.Kind {
		case Cycle:
			fmt.Fprintf(&b, "%s taken while %s held, at:\n", r.Classes[(i+1)%len(r.Classes)], r.Classes[i])
		case Nested:
			if i == 0 {
				fmt.Fprintf(&b, "%s held, taken at:\n", r.Classes[0])
			} else if r.Same {
				fmt.Fprintf(&b, "the same lock taken again (a deadlock), at:\n")
			} else {
				fmt.Fprintf(&b, "another %s taken, at:\n", r.Classes[0])
			}
		case Unheld:
			if i == 0 {
				fmt.Fprintf(&b, "%s unlocked by a goroutine that does not hold it, at:\n", r.Classes[0])
			} else {
				fmt.Fprintf(&b, "held by another goroutine, taken at:\n")
			}
		}
		b.WriteString(s)
	}
	return b.String()
}

// reports are what the checker found, in order; only the lockcheck build
// adds to them.
var reports struct {
	mu   sync.Mutex
	list []Report
}

// Reports returns what the checker has reported so far: always empty
// without the lockcheck tag.
func Reports() []Report {
	reports.mu.Lock()
	defer reports.mu.Unlock()
	return append([]Report(nil), reports.list...)
}

// report keeps r and prints it; the caller has made sure it is the first
// of its kind.
func report(r Report) {
	reports.mu.Lock()
	reports.list = append(reports.list, r)
	reports.mu.Unlock()
	fmt.Fprint(os.Stderr, r.String())
}

func resetReports() {
	reports.mu.Lock()
	reports.list = nil
	reports.mu.Unlock()
}
