package sock

import "time"

// DialOptions tunes an outbound connect.
type DialOptions struct {
	// Timeout bounds the connect; 0 means no bound beyond the kernel's.
	Timeout time.Duration
}

func (c *Conn) connectExpired() {
	if c.dialing.Load() {
		c.env.Counters.DialFailures.Add(1)
		c.fail(&DialError{Addr: c.dialAddr(), Err: ErrConnectTimeout})
	}
}
