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
func (c *Conn) Control(f func(fd uintptr)) error { return control(&c.life, c.fd, c.decref, f) }

// Control runs f with the datagram socket's descriptor; see
// Conn.Control, whose rules it shares.
func (p *PacketConn) Control(f func(fd uintptr)) error { return control(&p.life, p.fd, p.decref, f) }

// Control runs f with the listening socket's descriptor; see
// Conn.Control, whose rules it shares (and f must not accept).
func (ln *Listener) Control(f func(fd uintptr)) error {
	ln.shared.Store(true) // f may duplicate the descriptor
	return control(&ln.life, ln.fd, ln.decref, f)
}

// control runs f with fd under a reference of l, which decref drops.
func control(l *lifetime, fd sysfd, decref func(), f func(fd uintptr)) error {
	if !l.incref() {
		return ErrClosed
	}
	defer decref()
	f(uintptr(fd))
	return nil
}
