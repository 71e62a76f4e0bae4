//go:build !race

package pool

import (
	"os"

	"golang.org/x/sys/unix"
)

// slabsUsed: on Linux buffers live in anonymous mappings (slab.go),
// except under the race detector, which watches only the Go heap: there
// they stay on it, so that a race on a buffer's bytes is still caught.
const slabsUsed = true

// mapSlab maps n bytes of private anonymous memory. It stays mapped while
// its pool lives (a buffer, once made, stays with its pool); the pool's
// cleanup unmaps it (slab.go).
func mapSlab(n int) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	return b, nil
}

func unmapSlab(b []byte) error { return unix.Munmap(b) }
