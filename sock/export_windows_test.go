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

// SetSocketHook runs f before each accept's WSASocket; an error from f
// stands for WSASocket's.
func SetSocketHook(f func() error) (restore func()) {
	old := testHookSocket.Swap(&f)
	return func() { testHookSocket.Store(old) }
}

// AcceptOutstanding is how many AcceptEx operations a listener keeps
// posted.
const AcceptOutstanding = acceptOutstanding

// ListenerFDs is how many descriptors an idle listener holds: its socket
// and the sockets of its pending AcceptEx operations.
const ListenerFDs = 1 + acceptOutstanding
