package reactor

import "github.com/ioreactor/reactor/poller"

// On Linux each loop gets a raw epoll instance.
func newPoller() (*poller.Poller, error) { return poller.New() }

func platformSupported() error { return nil }
