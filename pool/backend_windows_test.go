package pool_test

import (
	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/pool"
)

// newPoller: Windows has one backend, the completion port.
func newPoller(pool.Config) func() (*poller.Poller, error) { return poller.New }
