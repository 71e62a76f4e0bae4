package pool

// Buffer leak detection. A build with -tags bufleak records, for every
// buffer handed out, the stack that took it, and forgets it on Release;
// Outstanding then names the place each unreleased buffer came from. Other
// builds record nothing and pay nothing: the hooks are empty.

import (
	"runtime"
	"strings"

	"github.com/ioreactor/reactor/internal/callstack"
)

// Leak is a buffer still in use and where it was taken.
type Leak struct {
	Buffer *Buffer
	Stack  string // the taker's stack, innermost first, without pool's own frames
}

// LeakChecking reports whether this build records where buffers are taken
// (-tags bufleak).
func LeakChecking() bool { return leakChecking }

// Outstanding lists the buffers of p still in use with the stack that took
// each, in a bufleak build; in others it returns nil. Buffers lent to an
// io_uring buffer ring are in use too, until the engine stops.
func (p *Buffers) Outstanding() []Leak { return outstanding(p) }

// formatStack renders pcs, leaving out the frames of package pool (but not
// its tests).
func formatStack(pcs []uintptr) string {
	return callstack.Format(pcs, "", func(f runtime.Frame) bool {
		return strings.Contains(f.Function, "/reactor/pool.") && !strings.Contains(f.File, "_test.go")
	})
}
