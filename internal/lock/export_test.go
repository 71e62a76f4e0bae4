package lock

// Reset forgets every order, hold and report, so that a test sees only
// its own (and the package's run ends with none).
func Reset() { reset() }
