package reactor

import (
	"fmt"

	"github.com/ioreactor/reactor/poller"
)

// On Windows the engine has one I/O completion port, shared by all its I/O
// threads (pool's shared mode), whatever Config says.
func newPoller(Backend, Config) func() (*poller.Poller, error) { return poller.New }

// platformBackend: Windows has IOCP alone.
func platformBackend(cfg Config) (Backend, error) {
	switch cfg.Backend {
	case BackendAuto, BackendIOCP:
		return BackendIOCP, nil
	}
	return 0, fmt.Errorf("reactor: backend %v is Linux's; Windows runs on IOCP (auto or iocp)", cfg.Backend)
}

// platformShared forces one port per engine.
func platformShared(Config) bool { return true }

func platformSupported() error { return nil }
