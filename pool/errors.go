package pool

import "errors"

// Errors returned by Blocking.Submit. They are sentinels so that a caller
// on an I/O thread can tell, with errors.Is, a pool that is momentarily
// overloaded (shed the request or answer "busy") from one that is shutting
// down (close the connection).
var (
	// ErrBlockingFull means every worker was busy and the queue already
	// held as many functions as the pool allows: the function was not
	// accepted and will not run.
	ErrBlockingFull = errors.New("pool: blocking pool queue is full")

	// ErrBlockingStopped means Stop has been called: the pool accepts no
	// more work, and the function will not run.
	ErrBlockingStopped = errors.New("pool: blocking pool is stopped")
)
