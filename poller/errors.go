package poller

import "errors"

// The package's sentinel errors; match them with errors.Is.
var (
	// ErrNotImplemented is returned by every function on a platform whose
	// backend has not been written yet.
	ErrNotImplemented = errors.New("poller: the Windows IOCP backend is not implemented yet")

	// ErrReservedToken is returned by Add and Modify when the caller passes
	// ReservedToken, which would make its events look like wake-ups.
	ErrReservedToken = errors.New("poller: token is reserved for wake-ups")

	// ErrNotSupported is returned by completion operations on a poller
	// that is not ring-backed, and by NewURing where the kernel refuses
	// io_uring.
	ErrNotSupported = errors.New("poller: operation not supported by this backend")

	// ErrClosed is returned by Close, Wake and WakeAll on a closed poller.
	ErrClosed = errors.New("poller: use of a closed poller")
)
