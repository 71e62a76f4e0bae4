package sock_test

import (
	"errors"
	"syscall"
)

// reusePortExists: Linux has SO_REUSEPORT.
const reusePortExists = true

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }
