package main

import (
	"os"

	"golang.org/x/sys/windows"
)

// isTerminal says whether f is a console: only a console handle has a
// console mode (see GetConsoleMode).
func isTerminal(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var merr error
	if err := rc.Control(func(fd uintptr) {
		var mode uint32
		merr = windows.GetConsoleMode(windows.Handle(fd), &mode)
	}); err != nil {
		return false
	}
	return merr == nil
}
