//go:build lockcheck

package lock

import (
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/ioreactor/reactor/internal/callstack"
)

// Enabled reports whether the order checker is built in (the lockcheck
// tag).
const Enabled = true

// ticket carries what willLock learnt to locked.
type ticket struct {
	g     gid
	class reflect.Type
	at    stack
}

// gid identifies a live goroutine (goid_*.go).
type gid uintptr

// hold is one lock a goroutine holds.
type hold struct {
	class reflect.Type
	m     *sync.Mutex
	at    stack // where it was taken
}

type pair struct{ from, to reflect.Type }

// state is the checker's bookkeeping. Its mutex is a plain sync.Mutex,
// held only around map work: nothing under it takes a Mutex or waits.
var state struct {
	mu    sync.Mutex
	held  map[gid][]hold                  // goroutine → the locks it holds, oldest first
	spare [][]hold                        // emptied lists of held, reused: locking allocates nothing
	edges map[pair]stack                  // each order, with its first stack
	out   map[reflect.Type][]reflect.Type // class → classes taken under it, for the cycle search
	made  map[string]bool                 // reports made, by key: each is made once
}

func willLock[C Class](m *sync.Mutex) ticket {
	t := ticket{g: goid(), class: reflect.TypeFor[C](), at: callers(shallow)}
	var (
		found []Report
		full  stack // where m is taken, to its depth: made when first needed
	)
	deep := func() *stack {
		if full.n == 0 {
			full = callers(depth)
		}
		return &full
	}
	state.mu.Lock()
	for _, h := range state.held[t.g] {
		if h.class == t.class {
			if r, ok := nested(h, m, deep); ok {
				found = append(found, r)
			}
			continue
		}
		e := pair{h.class, t.class}
		if _, ok := state.edges[e]; ok {
			continue
		}
		if state.edges == nil {
			state.edges = map[pair]stack{}
			state.out = map[reflect.Type][]reflect.Type{}
		}
		state.edges[e] = *deep()
		state.out[e.from] = append(state.out[e.from], e.to)
		if r, ok := cycle(e); ok {
			found = append(found, r)
		}
	}
	state.mu.Unlock()
	for _, r := range found {
		report(r)
	}
	return t
}

func locked(m *sync.Mutex, t ticket) {
	state.mu.Lock()
	push(t.g, hold{t.class, m, t.at})
	state.mu.Unlock()
}

// push records that g holds h. Called with state.mu held.
func push(g gid, h hold) {
	if state.held == nil {
		state.held = map[gid][]hold{}
	}
	hs, ok := state.held[g]
	if !ok && len(state.spare) > 0 {
		hs = state.spare[len(state.spare)-1]
		state.spare = state.spare[:len(state.spare)-1]
	}
	state.held[g] = append(hs, h)
}

func willUnlock[C Class](m *sync.Mutex) {
	g := goid()
	state.mu.Lock()
	if drop(g, m) {
		state.mu.Unlock()
		return
	}
	// Not ours. Forget it wherever it is held, so that the holder's later
	// locks record no order under a lock that is free.
	r := Report{Kind: Unheld, Classes: []string{reflect.TypeFor[C]().String()}}
	at := callers(depth)
	r.Stacks = append(r.Stacks, at.String())
	for other, hs := range state.held {
		if i := slices.IndexFunc(hs, func(h hold) bool { return h.m == m }); i >= 0 {
			r.Stacks = append(r.Stacks, hs[i].at.String())
			drop(other, m)
			break
		}
	}
	first := once("unheld " + r.Classes[0])
	state.mu.Unlock()
	if first {
		report(r)
	}
}

// drop removes m, the latest taken if g holds it twice, from g's locks
// and reports whether g held it. Called with state.mu held.
func drop(g gid, m *sync.Mutex) bool {
	hs := state.held[g]
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].m == m {
			hs = slices.Delete(hs, i, i+1)
			if len(hs) == 0 {
				delete(state.held, g)
				state.spare = append(state.spare, hs)
			} else {
				state.held[g] = hs
			}
			return true
		}
	}
	return false
}

// nested makes the report of m taken while h, of its class, is held, if
// it is the first of its class and kind: one lock taken twice (a
// self-deadlock) is reported even after two locks of the class were.
// Called with state.mu held.
func nested(h hold, m *sync.Mutex, at func() *stack) (Report, bool) {
	name := h.class.String()
	same := h.m == m
	key := "nested " + name
	if same {
		key = "self " + name
	}
	if !once(key) {
		return Report{}, false
	}
	return Report{Kind: Nested, Classes: []string{name}, Stacks: []string{h.at.String(), at().String()}, Same: same}, true
}

// cycle makes the report of the cycle that the new order e closes, if
// it closes one not reported yet: a path of orders from e.to back to
// e.from, found breadth first so the shortest is named. Called with
// state.mu held.
func cycle(e pair) (Report, bool) {
	prev := map[reflect.Type]reflect.Type{e.to: nil}
	queue := []reflect.Type{e.to}
	for len(queue) > 0 && prev[e.from] == nil {
		c := queue[0]
		queue = queue[1:]
		for _, next := range state.out[c] {
			if _, ok := prev[next]; !ok {
				prev[next] = c
				queue = append(queue, next)
			}
		}
	}
	if _, ok := prev[e.from]; !ok {
		return Report{}, false
	}
	// path: e.to … e.from; then e itself closes the cycle.
	var path []reflect.Type
	for c := e.from; c != nil; c = prev[c] {
		path = append(path, c)
	}
	slices.Reverse(path)
	r := Report{Kind: Cycle}
	for i, c := range path {
		r.Classes = append(r.Classes, c.String())
		if i+1 < len(path) {
			at := state.edges[pair{c, path[i+1]}]
			r.Stacks = append(r.Stacks, at.String())
		}
	}
	at := state.edges[e]
	r.Stacks = append(r.Stacks, at.String())
	if !once("cycle " + rotated(r.Classes)) {
		return Report{}, false
	}
	return r, true
}

// rotated names a cycle the same from wherever it starts.
func rotated(classes []string) string {
	low := 0
	for i, c := range classes {
		if c < classes[low] {
			low = i
		}
	}
	return strings.Join(append(slices.Clone(classes[low:]), classes[:low]...), " → ")
}

// once reports whether key is new, and remembers it. Called with
// state.mu held.
func once(key string) bool {
	if state.made[key] {
		return false
	}
	if state.made == nil {
		state.made = map[string]bool{}
	}
	state.made[key] = true
	return true
}

// Order returns the lock orders the checker has seen, sorted by class
// names.
func Order() []Edge {
	state.mu.Lock()
	defer state.mu.Unlock()
	var out []Edge
	for e, at := range state.edges {
		out = append(out, Edge{From: e.from.String(), To: e.to.String(), Stack: at.String()})
	}
	slices.SortFunc(out, func(a, b Edge) int {
		return strings.Compare(a.From+"\x00"+a.To, b.From+"\x00"+b.To)
	})
	return out
}

func reset() {
	state.mu.Lock()
	state.held, state.spare, state.edges, state.out, state.made = nil, nil, nil, nil, nil
	state.mu.Unlock()
	resetReports()
}

// depth bounds the frames kept of a stack: an order's, an unlock's.
// Where a lock still held was taken is kept to shallow frames, since
// walking the stack is most of the checker's cost on every Lock, and
// that stack is shown only in a Nested or Unheld report. Both count a
// few frames of this package, which String leaves out.
const (
	depth   = 32
	shallow = 8
)

type stack struct {
	pcs [depth]uintptr
	n   int
	cut bool // there were more frames
}

// callers is the stack of its caller, at most n frames of it.
func callers(n int) stack {
	var s stack
	s.n = runtime.Callers(1, s.pcs[:n])
	s.cut = s.n == n
	return s
}

// self prefixes the names of this package's functions, which String
// leaves out of a stack.
var self = reflect.TypeFor[ticket]().PkgPath() + "."

// String symbolizes s, innermost call first, a frame in two lines.
func (s *stack) String() string {
	out := callstack.Format(slices.Clone(s.pcs[:s.n]), "\t", // a copy: Frames keeps it
		func(f runtime.Frame) bool { return strings.HasPrefix(f.Function, self) })
	if s.cut {
		out += "\t...\n"
	}
	return out
}
