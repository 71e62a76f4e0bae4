// Package procfd counts and names the process's open descriptors, for the
// leak checks of the tests and of the stress binary.
package procfd

import "errors"

// ErrUnavailable: Windows has no list like Linux's /proc/self/fd, and its
// handle count also moves with handles the runtime opens for itself. The
// engine's own descriptor counter still catches its leaks there.
var ErrUnavailable = errors.New("procfd: descriptors are not counted on Windows")

// Count reports ErrUnavailable on Windows.
func Count() (int, error) { return 0, ErrUnavailable }

// List returns nothing on Windows.
func List() []string { return nil }
