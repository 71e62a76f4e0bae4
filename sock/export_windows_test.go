package sock

// InjectDuplicateSend posts a second packet for c's send operation, as a
// provider that queued one despite skip-on-success would. The port must
// drop it: the operation has completed.
func InjectDuplicateSend(c *Conn) error {
	return c.loop.Poller().Post(c.reg.Token(), &c.os.io.wop.Operation, 1)
}

// SetAcceptHook makes the next accepts complete with the errors f returns.
func SetAcceptHook(f func(errno uint32) uint32) (restore func()) {
	old := testHookAcceptDone
	testHookAcceptDone = f
	return func() { testHookAcceptDone = old }
}

// ListenerFDs is how many descriptors an idle listener holds: its socket
// and the sockets of its pending AcceptEx operations.
const ListenerFDs = 1 + acceptOutstanding
