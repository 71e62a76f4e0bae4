//go:build !linux || race

package pool

import "errors"

// slabsUsed: buffers come from the Go heap on this platform (Windows, where
// receives do not lend buffers to the kernel in advance), or under the race
// detector, which watches only the Go heap (see slab_linux.go).
const slabsUsed = false

func mapSlab(int) ([]byte, error) { return nil, errors.ErrUnsupported }

func unmapSlab([]byte) error { return errors.ErrUnsupported }
