// Package procfd counts and names the process's open descriptors (handles
// on Windows), for the leak checks of the tests and of the stress binary.
package procfd

//go:generate go run golang.org/x/sys/windows/mkwinsyscall -output zsyscall_windows.go procfd_windows.go
