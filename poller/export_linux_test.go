package poller

// Test-only access to a Poller's insides.

func EpollFD(p *Poller) int { return p.epfd }
func WakeFD(p *Poller) int  { return p.wakefd }

// SetDrainHook installs f to run inside Wait between its stopping check and
// its read of the eventfd, and returns a function that removes it.
func SetDrainHook(f func()) (restore func()) {
	old := testHookDrain
	testHookDrain = f
	return func() { testHookDrain = old }
}
