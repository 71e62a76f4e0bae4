// Package procfd counts and names the process's open descriptors (handles
// on Windows), for the leak checks of the tests and of the stress binary.
package procfd

import "errors"

// ErrUnavailable: the system gave no count that means anything (Windows
// under Wine, whose GetProcessHandleCount is a stub reporting 0). Defined
// on every platform, so that callers can test for it anywhere.
var ErrUnavailable = errors.New("procfd: GetProcessHandleCount reported 0 handles (Wine implements it as a stub)")

//go:generate go run golang.org/x/sys/windows/mkwinsyscall -output zsyscall_windows.go procfd_windows.go
