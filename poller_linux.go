package reactor

import "github.com/ioreactor/reactor/poller"

// newPoller makes the poller of one loop: a raw epoll instance, or an
// io_uring with a buffer ring for BackendURing.
func newPoller(cfg Config) func() (*poller.Poller, error) {
	if cfg.Backend != BackendURing {
		return poller.New
	}
	slots := cfg.RingBuffers
	if slots <= 0 {
		slots = 256
	}
	return func() (*poller.Poller, error) {
		return poller.NewURing(poller.URingConfig{Buffers: slots})
	}
}

func platformSupported() error { return nil }
