package poller_test

import (
	"errors"
	"testing"

	"github.com/ioreactor/reactor/poller"
)

// The behavioural tests live in epoll_linux_test.go until the IOCP backend
// exists; until then Windows must fail loudly rather than pretend.
func TestNewIsNotImplemented(t *testing.T) {
	p, err := poller.New()
	if p != nil || !errors.Is(err, poller.ErrNotImplemented) {
		t.Fatalf("New() = %v, %v; want nil, ErrNotImplemented", p, err)
	}
}
