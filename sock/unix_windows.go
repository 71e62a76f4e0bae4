package sock

import "fmt"

// errNoUnix is what Listen and Dial return for a "unix:" address on
// Windows. Windows 10 has AF_UNIX stream sockets, but Wine 8, where this
// port is tested, refuses them (WSAEAFNOSUPPORT), so an IOCP path for
// them could not be tested and is not offered (docs/unix.md).
func errNoUnix(addr string) error {
	return fmt.Errorf("%w: %q: unix sockets on Windows", ErrNotSupported, addr)
}

// checkNotUnix refuses a Unix-domain address, by name.
func checkNotUnix(addr string) error {
	_, isUnix, err := unixPath(addr)
	if err != nil {
		return err
	}
	if isUnix {
		return errNoUnix(addr)
	}
	return nil
}

// removeFile has nothing to do: no listener on Windows has a file.
func (ln *Listener) removeFile() {}
