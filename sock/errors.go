package sock

import (
	"errors"
	"fmt"
	"net"
)

var (
	// ErrClosed is returned by operations on a closed connection or
	// listener, and after a write side was shut down. It wraps
	// net.ErrClosed, so errors.Is(err, net.ErrClosed) holds.
	ErrClosed = fmt.Errorf("sock: use of closed connection: %w", net.ErrClosed)
	// ErrLingerTimeout closes a connection whose graceful close could not
	// flush its queued writes within the linger bound; the rest is dropped
	// and the peer gets a reset.
	ErrLingerTimeout = errors.New("sock: graceful close did not flush within the linger bound")
	// ErrConnectTimeout fails an outbound connect that did not finish in time.
	ErrConnectTimeout = errors.New("sock: connect timed out")
	// ErrNotSupported is returned on a platform whose backend is not built yet.
	ErrNotSupported = errors.New("sock: not supported on this platform yet")
	// ErrNotConnected is returned by Write on an outbound connection whose
	// connect has not finished: write from OnOpen on.
	ErrNotConnected = errors.New("sock: not connected yet")
	// ErrSelfConnect fails a connect that reached its own socket: the
	// port dialled was unused and in the ephemeral range, and the kernel
	// chose it as the source (TCP simultaneous open).
	ErrSelfConnect = errors.New("sock: connected to itself: nothing listens on that port")
	// ErrTooManyReads is returned by Read when the connection already has
	// its maximum number of reads outstanding.
	ErrTooManyReads = errors.New("sock: too many reads outstanding")
	// ErrNotListener is returned by ListenFile for a file that is not a
	// listening TCP or Unix-domain stream socket.
	ErrNotListener = errors.New("sock: not a listening stream socket")
	// ErrBadOption is returned by Listen and Dial for an option out of its
	// range (keep-alive, user timeout), with the option's name and value.
	ErrBadOption = errors.New("sock: option out of range")
	// ErrReadTimeout closes a connection on which no bytes arrived within
	// its ConnOptions.ReadTimeout.
	ErrReadTimeout = errors.New("sock: no bytes arrived within the read timeout")
	// ErrWriteTimeout closes a connection whose queued writes made no
	// progress within its ConnOptions.WriteTimeout: the peer stopped
	// reading.
	ErrWriteTimeout = errors.New("sock: queued writes made no progress within the write timeout")
)

// PanicError is the close reason of a connection whose callback panicked.
type PanicError struct {
	Value any    // what the callback passed to panic
	Stack []byte // the stack of the panicking goroutine
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("sock: callback panicked: %v", e.Value)
}

// DialError is the close reason of an outbound connect that failed.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string { return "sock: dial " + e.Addr + ": " + e.Err.Error() }

// Unwrap returns the underlying cause.
func (e *DialError) Unwrap() error { return e.Err }
