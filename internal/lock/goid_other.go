//go:build lockcheck && !amd64 && !arm64

package lock

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
)

var goidBuf struct {
	mu  sync.Mutex
	buf [64]byte // here, not on the stack, so that goid allocates nothing
}

// goid is the calling goroutine's id, read from the header runtime.Stack
// writes ("goroutine 18 [running]:"), which is all Go offers without an
// assembly file (goid_asm.go has them for amd64 and arm64). It costs a
// traceback on every Lock and Unlock.
func goid() gid {
	goidBuf.mu.Lock()
	defer goidBuf.mu.Unlock()
	n := runtime.Stack(goidBuf.buf[:], false)
	s, ok := bytes.CutPrefix(goidBuf.buf[:n], []byte("goroutine "))
	var id gid
	for _, d := range s {
		if d < '0' || d > '9' {
			break
		}
		id = id*10 + gid(d-'0')
	}
	if !ok || id == 0 {
		panic("lock: no goroutine id in " + strconv.Quote(string(goidBuf.buf[:n])))
	}
	return id
}
