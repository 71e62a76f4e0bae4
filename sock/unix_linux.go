package sock

import (
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// newUnixSocket makes a non-blocking, close-on-exec Unix-domain stream
// socket.
func newUnixSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	return fd, nil
}

// bindUnix makes the listener's Unix-domain socket, bound to path and
// listening; on failure nothing is left open and no file is left behind.
// A file already at path is an error (EADDRINUSE), as in Go's net: it may
// belong to a server that is still running, and only its owner knows.
func (ln *Listener) bindUnix(path string, o ListenOptions) error {
	if o.ReusePort {
		return fmt.Errorf("%w: SO_REUSEPORT is for TCP and UDP, not unix sockets", ErrNotSupported)
	}
	fd, err := newUnixSocket()
	if err != nil {
		return err
	}
	ln.env.Counters.FDs.Add(1)
	ln.fd, ln.path = fd, path
	mode := uint32(o.UnixMode)
	if mode != 0 {
		// bind gives the file the socket's own mode less the umask, so
		// the file is born with no more bits than asked for.
		if err := unix.Fchmod(fd, mode); err != nil {
			closeFD(ln.env, fd)
			return os.NewSyscallError("fchmod", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		closeFD(ln.env, fd)
		return &os.PathError{Op: "bind", Path: path, Err: err}
	}
	if testHookUnixBound != nil {
		testHookUnixBound(path)
	}
	if path[0] != '@' {
		// Remember which file this bind made, so that Close removes that
		// file and not one another server has put in its place since.
		var st unix.Stat_t
		if unix.Stat(path, &st) == nil {
			ln.os.dev, ln.os.ino = st.Dev, st.Ino
			ln.unlink.Store(true)
			if mode != 0 && st.Mode&0o777 != mode {
				// The umask took bits away; give them back. This only
				// widens what the file allowed since its bind.
				if err := unix.Chmod(path, mode); err != nil {
					ln.removeFile()
					closeFD(ln.env, fd)
					return &os.PathError{Op: "chmod", Path: path, Err: err}
				}
			}
		}
	}
	if err := ln.listen(o); err != nil {
		ln.removeFile()
		closeFD(ln.env, fd)
		return err
	}
	return nil
}

// removeFile removes the file a Unix-domain listener's bind made, if it
// is still the one at its path. Best effort: a file already gone, or
// replaced, is left as it is.
func (ln *Listener) removeFile() {
	if !ln.unlink.Swap(false) {
		return
	}
	var st unix.Stat_t
	if unix.Stat(ln.path, &st) == nil && st.Dev == ln.os.dev && st.Ino == ln.os.ino {
		if err := unix.Unlink(ln.path); err != nil {
			ln.env.Counters.CloseErrors.Add(1) // a file left behind is counted, as a failed close is
		}
	}
}

// dialUnix connects to the Unix-domain socket at path. The kernel
// connects a Unix-domain socket at once or not at all, so every failure
// is returned here: no file or nobody listening (ENOENT, ECONNREFUSED), a
// full accept queue (EAGAIN, which a non-blocking connect cannot wait
// out). On success the connection opens as a TCP dial does, through its
// first writable event.
func dialUnix(env *Env, addr, path string, h Handler, o DialOptions) (*Conn, error) {
	h, err := o.prepare(addr, h)
	if err != nil {
		return nil, err
	}
	fd, err := newUnixSocket()
	if err != nil {
		return nil, &DialError{Addr: addr, Err: err}
	}
	env.Counters.FDs.Add(1)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		closeFD(env, fd)
		env.Counters.DialFailures.Add(1)
		if err == unix.EAGAIN {
			return nil, &DialError{Addr: addr, Err: fmt.Errorf("connect: the listener's accept queue is full: %w", err)}
		}
		return nil, &DialError{Addr: addr, Err: &os.PathError{Op: "connect", Path: path, Err: err}}
	}
	return connecting(env, fd, h, &o, addr, netip.AddrPort{})
}

// testHookUnixBound, set by a test, runs on Listen's goroutine right after
// a Unix-domain bind, before anything changes the new file.
var testHookUnixBound func(path string)
