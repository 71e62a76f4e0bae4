package sock

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ListenFile accepts on a listening stream socket made elsewhere: one
// systemd passed (socket activation), or one a process handed to its
// successor for a restart that refuses no connection (Listener.File). The
// engine takes a duplicate of f's descriptor, so the caller still owns f
// and closes it when it likes; the duplicate shares f's open file, which
// the engine puts in non-blocking mode, and the socket, which gets a 10 ms
// receive timeout (docs/handoff.md says why). TCP (IPv4, IPv6) and Unix-domain
// sockets are taken; anything else is refused with ErrNotListener, and
// nothing is left open. The socket is already bound and listening, so
// Backlog, ReusePort and UnixMode are refused; and the engine did not make
// its file, if it has one, so Close leaves it (docs/handoff.md).
func ListenFile(env *Env, f *os.File, h Handler, o ListenOptions) (*Listener, error) {
	if o.Backlog != 0 || o.ReusePort || o.UnixMode != 0 {
		return nil, fmt.Errorf("sock: ListenFile: Backlog, ReusePort and UnixMode were decided by whoever made the socket")
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	fd, err := dupListening(f)
	if err != nil {
		return nil, err
	}
	env.Counters.FDs.Add(1)
	ln := newListener(env, h, o.ConnOptions)
	ln.fd = fd
	ln.shared.Store(true)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		closeFD(env, fd)
		return nil, os.NewSyscallError("getsockname", err)
	}
	if u, ok := sa.(*unix.SockaddrUnix); ok {
		ln.path = u.Name
	} else {
		ln.addr = fromSockaddr(sa)
		// As in bindTCP: accepted sockets inherit what the listener takes.
		ln.perAccept = ln.tcp.apply(fd)
	}
	if err := ln.start(); err != nil {
		return nil, err
	}
	return ln, nil
}

// dupListening duplicates f's descriptor (close-on-exec) if it is a
// listening stream socket of a family the engine serves, and makes it
// non-blocking. On failure nothing is left open.
func dupListening(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("%w: %s: %v", ErrNotListener, f.Name(), err)
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, fmt.Errorf("%w: %s: %v", ErrNotListener, f.Name(), err)
	}
	if derr != nil {
		return -1, os.NewSyscallError("fcntl", derr)
	}
	if err := checkListening(fd); err != nil {
		return -1, closeDup(fd, fmt.Errorf("%w: %s: %v", ErrNotListener, f.Name(), err))
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return -1, closeDup(fd, os.NewSyscallError("fcntl", err))
	}
	if err := setAcceptTimeout(fd); err != nil {
		return -1, closeDup(fd, err)
	}
	return fd, nil
}

// closeDup closes a duplicate that ListenFile will not use (not counted in
// FDs yet) and returns why it was not used, with the close's own failure.
func closeDup(fd int, why error) error {
	if err := unix.Close(fd); err != nil {
		return errors.Join(why, os.NewSyscallError("close", err))
	}
	return why
}

// checkListening says why fd is not a listening TCP or Unix-domain stream
// socket, or nil if it is one.
func checkListening(fd int) error {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return err // ENOTSOCK: not a socket at all
	}
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return err
	}
	listening, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil {
		return err
	}
	switch {
	case typ != unix.SOCK_STREAM:
		return fmt.Errorf("a socket of type %d, not a stream", typ)
	case domain != unix.AF_INET && domain != unix.AF_INET6 && domain != unix.AF_UNIX:
		return fmt.Errorf("a socket of family %d, not TCP or Unix-domain", domain)
	case listening == 0:
		return fmt.Errorf("a stream socket that is not listening")
	}
	return nil
}

// File returns a duplicate of the listening socket, for another process
// to accept on (exec.Cmd.ExtraFiles, then ListenFile there); the caller
// closes it. From then on Close leaves a Unix-domain listener's file where
// it is: the socket lives on in the other process, and the path is how
// clients reach it. Fails with ErrClosed once the listener is closed.
func (ln *Listener) File() (*os.File, error) {
	nfd := -1
	var derr error
	if err := ln.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("fcntl", derr)
	}
	ln.unlink.Store(false)
	name := "reactor-listener:" + ln.addr.String()
	if ln.path != "" {
		name = "reactor-listener:unix:" + ln.path
	}
	return os.NewFile(uintptr(nfd), name), nil
}
