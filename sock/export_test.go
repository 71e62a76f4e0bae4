package sock

// FD exposes a connection's descriptor number to the fd-reuse test.
func FD(c *Conn) int { return int(c.fd) }

// HoldsWriteQueue reports whether c holds a write queue now.
func HoldsWriteQueue(c *Conn) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.wq != nil
}

// SetHandshakeHook runs f on each TLS handshake's worker before the
// handshake.
func SetHandshakeHook(f func()) (restore func()) {
	old := testHookHandshake.Swap(&f)
	return func() { testHookHandshake.Store(old) }
}
