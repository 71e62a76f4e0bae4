//go:build bufleak

package pool

import (
	"runtime"
	"sync"
)

const leakChecking = true

// takers maps each buffer in use to the program counters of the stack
// that took it. A sync.Map, not a mutex: this is instrumentation beside
// the engine's locks, outside their order.
var takers sync.Map // *Buffer → []uintptr

func trackGet(b *Buffer) {
	pcs := make([]uintptr, 24)
	// Skip runtime.Callers, trackGet and Get.
	n := runtime.Callers(3, pcs)
	takers.Store(b, pcs[:n])
}

func trackRelease(b *Buffer) { takers.Delete(b) }

func outstanding(p *Buffers) []Leak {
	var out []Leak
	takers.Range(func(k, v any) bool {
		if b := k.(*Buffer); b.pool == p {
			out = append(out, Leak{Buffer: b, Stack: formatStack(v.([]uintptr))})
		}
		return true
	})
	return out
}
