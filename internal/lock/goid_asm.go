//go:build lockcheck && (amd64 || arm64)

package lock

// getg returns the address of the runtime's descriptor of the calling
// goroutine (goid_$GOARCH.s).
func getg() uintptr

// goid is the address of the calling goroutine's descriptor: a few
// nanoseconds, where the id parsed from runtime.Stack costs a formatted
// traceback under the runtime's print lock on every Lock and Unlock (with
// it the checked suite took 11½ minutes instead of 1¼, and its
// timing-sensitive tests failed). The runtime reuses a descriptor only
// after its goroutine has exited, and such a goroutine holds no lock: it
// released them, or another goroutine did (an Unheld report, which
// forgets the hold).
func goid() gid { return gid(getg()) }
