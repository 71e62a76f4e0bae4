package reactor_test

import (
	"errors"
	"testing"

	"github.com/ioreactor/reactor"
)

// TestNewRefusesOnWindows: until the IOCP backend lands, New says so
// instead of handing out an engine that cannot work.
func TestNewRefusesOnWindows(t *testing.T) {
	e, err := reactor.New(reactor.Config{})
	if !errors.Is(err, reactor.ErrWindowsNotSupported) || e != nil {
		t.Fatalf("New on Windows = %v, %v; want nil, ErrWindowsNotSupported", e, err)
	}
}
