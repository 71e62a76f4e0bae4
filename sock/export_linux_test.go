package sock

// SetWouldBlockHook installs f to run between an inline write's "would
// block" and its queueing, and returns a function that removes it.
func SetWouldBlockHook(f func()) (undo func()) {
	testHookWouldBlock = f
	return func() { testHookWouldBlock = nil }
}
