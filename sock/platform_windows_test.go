package sock_test

import (
	"errors"

	"golang.org/x/sys/windows"
)

// reusePortExists: Windows has no SO_REUSEPORT (its SO_REUSEADDR lets
// another socket steal a bound port, which the engine never sets).
const reusePortExists = false

func isAddrInUse(err error) bool { return errors.Is(err, windows.WSAEADDRINUSE) }
