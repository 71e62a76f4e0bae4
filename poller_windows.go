package reactor

import (
	"github.com/ioreactor/reactor/poller"
)

// On Windows the engine has one I/O completion port, shared by all its I/O
// threads (pool's shared mode), whatever Config says.
func newPoller(Backend, Config) func() (*poller.Poller, error) { return poller.New }

// autoBackend: BackendAuto stands for IOCP on Windows.
func autoBackend(Config) Backend { return BackendAuto }

// platformShared forces one port per engine.
func platformShared(Config) bool { return true }

func platformSupported() error { return nil }
