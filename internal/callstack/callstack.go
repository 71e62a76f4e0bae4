// Package callstack renders call stacks for the engine's checking builds:
// where a leaked buffer was taken (pool, -tags bufleak) and where locks
// were taken in a bad order (internal/lock, -tags lockcheck).
package callstack

import (
	"runtime"
	"strconv"
	"strings"
)

// Format renders pcs innermost call first, each frame as two lines: its
// function, then its file and line one tab deeper. Every line starts with
// indent. Frames for which omit returns true (the checker's own) are left
// out.
func Format(pcs []uintptr, indent string, omit func(runtime.Frame) bool) string {
	var b strings.Builder
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if f.PC != 0 && !omit(f) {
			b.WriteString(indent)
			b.WriteString(f.Function)
			b.WriteString("\n\t")
			b.WriteString(indent)
			b.WriteString(f.File)
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(f.Line))
			b.WriteByte('\n')
		}
		if !more {
			return b.String()
		}
	}
}
