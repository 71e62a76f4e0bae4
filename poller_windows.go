package reactor

import (
	"errors"

	"github.com/ioreactor/reactor/poller"
)

// ErrWindowsNotSupported is returned by New on Windows until the IOCP
// backend lands.
var ErrWindowsNotSupported = errors.New("reactor: Windows is not supported yet (the IOCP backend is not built); New refuses rather than run without one")

func newPoller(Backend, Config) func() (*poller.Poller, error) { return poller.New }

func autoBackend(Config) Backend { return BackendAuto }

func platformSupported() error { return ErrWindowsNotSupported }
