package reactor

import (
	"errors"
	"sync"

	"github.com/ioreactor/reactor/poller"
)

// newPoller makes the poller of one loop: a raw epoll instance, or an
// io_uring with a buffer ring for BackendURing.
func newPoller(b Backend, cfg Config) func() (*poller.Poller, error) {
	if b != BackendURing {
		return poller.New
	}
	slots := cfg.RingSlots
	if slots <= 0 {
		slots = 1
		for slots < max(cfg.RingBuffers, DefaultRingBuffers) {
			slots *= 2
		}
	}
	return func() (*poller.Poller, error) {
		return poller.NewURing(poller.URingConfig{Buffers: slots})
	}
}

// ringUsable caches whether this process may create an io_uring (a
// sysctl or a seccomp filter may forbid it).
var ringUsable = sync.OnceValue(func() bool {
	p, err := poller.NewURing(poller.URingConfig{Entries: 2})
	if err != nil {
		return !errors.Is(err, poller.ErrNotSupported)
	}
	p.Close()
	return true
})

// autoBackend resolves BackendAuto: io_uring unless the threads share one
// poller or the kernel refuses it.
func autoBackend(cfg Config) Backend {
	if cfg.SharedPoller || !ringUsable() {
		return BackendEpoll
	}
	return BackendURing
}

// platformBackend resolves Config.Backend for Linux.
func platformBackend(cfg Config) (Backend, error) {
	switch cfg.Backend {
	case BackendAuto:
		return autoBackend(cfg), nil
	case BackendIOCP:
		return 0, errors.New("reactor: BackendIOCP is Windows' backend; on Linux choose auto, epoll or uring")
	}
	return cfg.Backend, nil
}

// platformShared: on Linux the threads share a poller only when asked.
func platformShared(cfg Config) bool { return cfg.SharedPoller }

func platformSupported() error { return nil }
