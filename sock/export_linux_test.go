package sock

import (
	"time"

	"github.com/ioreactor/reactor/pool"
)

// SetWouldBlockHook installs f to run between an inline write's "would
// block" and its queueing, and returns a function that removes it.
func SetWouldBlockHook(f func()) (undo func()) {
	testHookWouldBlock = f
	return func() { testHookWouldBlock = nil }
}

// SetUnixBoundHook installs f to run right after a Unix-domain listener's
// bind, and returns a function that removes it.
func SetUnixBoundHook(f func(path string)) (undo func()) {
	testHookUnixBound = f
	return func() { testHookUnixBound = nil }
}

// BusyListenerLoop posts a task that holds the listener's I/O thread for
// d, so that nothing else runs on that loop (nor does it enter the kernel)
// meanwhile.
func BusyListenerLoop(ln *Listener, d time.Duration) {
	ln.loop.Post(sleepTask(d))
}

type sleepTask time.Duration

func (s sleepTask) RunTask(*pool.Loop) { time.Sleep(time.Duration(s)) }

// ListenerFDs is how many descriptors an idle listener holds.
const ListenerFDs = 1
