package sock

// Control runs f with the connection's descriptor (a file descriptor on
// Linux, a SOCKET handle on Windows), for a socket option or a query the
// engine has no call for: SO_PEERCRED on a Unix-domain socket,
// TCP_INFO, TCP_CONGESTION. The descriptor stays open until f returns;
// Control returns ErrClosed, without calling f, once the connection is
// closed.
//
// f runs on the caller's goroutine, concurrently with the engine's I/O.
// It must not close the descriptor, change its blocking mode, or read or
// write through it: bytes taken or sent behind the engine's back break
// the order it guarantees.
func (c *Conn) Control(f func(fd uintptr)) error {
	if !c.life.incref() {
		return ErrClosed
	}
	defer c.decref()
	f(uintptr(c.fd))
	return nil
}

// Control runs f with the datagram socket's descriptor; see
// Conn.Control, whose rules it shares.
func (p *PacketConn) Control(f func(fd uintptr)) error {
	if !p.life.incref() {
		return ErrClosed
	}
	defer p.decref()
	f(uintptr(p.fd))
	return nil
}

// Control runs f with the listening socket's descriptor; see
// Conn.Control, whose rules it shares (and f must not accept).
func (ln *Listener) Control(f func(fd uintptr)) error {
	if !ln.life.incref() {
		return ErrClosed
	}
	defer ln.decref()
	f(uintptr(ln.fd))
	return nil
}
