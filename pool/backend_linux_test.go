package pool_test

import (
	"errors"
	"os"

	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/pool"
)

// newPoller gives the group tests the backend the rest of the suite runs
// on (testutil.BackendEnv): io_uring unless epoll is asked for, the
// threads share a poller, or the kernel refuses a ring. So the loops'
// waits with timeouts, wake-ups and tasks are proved on both backends.
func newPoller(cfg pool.Config) func() (*poller.Poller, error) {
	if cfg.Shared || os.Getenv(testutil.BackendEnv) == "epoll" {
		return poller.New
	}
	if p, err := poller.NewURing(poller.URingConfig{Entries: 64}); errors.Is(err, poller.ErrNotSupported) {
		return poller.New
	} else if err == nil {
		p.Close()
	}
	return func() (*poller.Poller, error) { return poller.NewURing(poller.URingConfig{Entries: 64}) }
}
