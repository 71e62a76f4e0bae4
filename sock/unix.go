package sock

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Unix-domain stream sockets (docs/unix.md). Listen and Dial take an
// address "unix:PATH": PATH is a file-system path, or "@NAME" for a name
// in Linux's abstract namespace, which has no file and vanishes with the
// last socket bound to it. Everything above the socket is the same as on
// TCP: reads, writes and their order, filters (TLS too), flow control,
// close. What differs is below: no TCP_NODELAY, no port, and the
// addresses a Conn reports are zero.

// unixPrefix marks a Unix-domain address.
const unixPrefix = "unix:"

// sunPathLen is the size of sockaddr_un's sun_path. A file-system path
// needs its terminating NUL in it, so it may be 107 bytes long; an
// abstract name, whose '@' becomes the leading NUL, may fill all 108.
const sunPathLen = 108

// ErrUnixPath is returned for a "unix:" address the kernel cannot take:
// empty, too long for sun_path, or holding a NUL byte. Nothing is opened.
var ErrUnixPath = errors.New("sock: bad unix socket path")

// unixPath reports whether addr is a Unix-domain address and, if so,
// returns its path, checked against the kernel's limits.
func unixPath(addr string) (path string, ok bool, err error) {
	path, ok = strings.CutPrefix(addr, unixPrefix)
	if !ok {
		return "", false, nil
	}
	switch {
	case path == "" || path == "@":
		return "", true, fmt.Errorf("%w: %q names no socket", ErrUnixPath, addr)
	case strings.IndexByte(path, 0) >= 0:
		return "", true, fmt.Errorf("%w: %q holds a NUL byte", ErrUnixPath, addr)
	case path[0] == '@' && len(path) > sunPathLen:
		return "", true, fmt.Errorf("%w: the abstract name in %q is %d bytes with its '@'; the kernel takes %d",
			ErrUnixPath, addr, len(path), sunPathLen)
	case path[0] != '@' && len(path) >= sunPathLen:
		return "", true, fmt.Errorf("%w: the path in %q is %d bytes; the kernel takes at most %d",
			ErrUnixPath, addr, len(path), sunPathLen-1)
	}
	return path, true, nil
}

// Path is the Unix-domain path the listener is bound to ("@NAME" for an
// abstract name), or "" for a TCP listener. A listener that made a file
// removes it when it is closed.
func (ln *Listener) Path() string { return ln.path }

// checkUnixMode refuses a UnixMode that cannot apply: on a TCP address, on
// an abstract name, or with bits beyond the permission bits.
func (o *ListenOptions) checkUnixMode(isUnix bool, path string) error {
	switch {
	case o.UnixMode == 0:
		return nil
	case !isUnix:
		return fmt.Errorf("sock: UnixMode %v is for a unix: address", o.UnixMode)
	case path[0] == '@':
		return fmt.Errorf("sock: UnixMode %v: the abstract name %q has no file and no permissions: anyone in the network namespace may connect", o.UnixMode, path)
	case o.UnixMode&^os.ModePerm != 0:
		return fmt.Errorf("sock: UnixMode %v: only permission bits (0777) apply", o.UnixMode)
	}
	return nil
}
