package sock

// FD exposes a connection's descriptor number to the fd-reuse test.
func FD(c *Conn) int { return int(c.fd) }
