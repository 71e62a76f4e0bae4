//go:build lockcheck && (amd64 || arm64)

package lock

// getg returns the address of the runtime's descriptor of the calling
// goroutine (goid_$GOARCH.s).
func getg() uintptr

// goid is the address of the calling goroutine's descriptor: a few
// nanoseconds, where the id parsed from runtime.Stack costs a formatted
// traceback under the runtime's print lock on every Lock and Unlock (with
// it the checked suite took 11½ minutes instead of 1¼, and its
// timing-sensitive tests failed, measured once when this was written).
// The runtime reuses a descriptor only after its goroutine has exited.
// Known limit: a goroutine that exits holding a lock, which another
// goroutine unlocks later (legal for sync.Mutex, never done by the
// engine), leaves its hold behind until that Unlock (an Unheld report,
// which forgets it); a new goroutine given the same descriptor meanwhile
// inherits the hold and may get a false Nested or Cycle report.
func goid() gid { return gid(getg()) }
