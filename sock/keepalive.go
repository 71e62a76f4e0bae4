package sock

import (
	"fmt"
	"time"
)

// A peer can vanish without a word: its machine loses power, a NAT or
// firewall between forgets the flow, a cable is pulled. No FIN and no RST
// arrive, so a connection that only waits to read waits for ever, and one
// that has sent retransmits for about 15 minutes (Linux's tcp_retries2)
// before it gives up. Each holds its descriptor, its buffers and whatever
// the application keeps for it. Two kernel mechanisms end such a
// connection, and the engine sets both per connection:
//
//   - Keep-alive probes (SO_KEEPALIVE): after Idle with nothing received,
//     the kernel sends a probe every Interval, and after Count unanswered
//     ones it drops the connection. It is on by default with the values
//     Go's net package uses (15 s, 15 s, 9), so code moving from net keeps
//     the protection it had.
//   - A user timeout (TCP_USER_TIMEOUT on Linux, TCP_MAXRT on Windows):
//     bytes sent and not acknowledged for that long drop the connection.
//     Probes do not run while data is unacknowledged, so this is what
//     bounds a connection whose peer vanished mid-transfer. Off by default,
//     as in Go's net: the right bound depends on the network.
//
// A dropped connection fails with ETIMEDOUT (WSAETIMEDOUT): its outstanding
// read, or its next operation, reports it, and OnClose gets it as the
// reason (errors.Is(err, syscall.ETIMEDOUT)). Setting the options is best
// effort, as TCP_NODELAY is: a kernel that refuses one is counted in
// SockoptErrors and the connection goes on without it. See
// docs/keepalive.md.

// KeepAlive configures TCP keep-alive probes. The zero value means the
// defaults: on, DefaultKeepAliveIdle, DefaultKeepAliveInterval,
// DefaultKeepAliveCount. The kernel counts in whole seconds: durations
// are rounded up to one.
type KeepAlive struct {
	// Off leaves probes off (the kernel's default for a new socket).
	Off bool
	// Idle is how long a connection receives nothing before the first
	// probe; 0 means DefaultKeepAliveIdle.
	Idle time.Duration
	// Interval is the time between unanswered probes; 0 means
	// DefaultKeepAliveInterval.
	Interval time.Duration
	// Count is how many unanswered probes drop the connection; 0 means
	// DefaultKeepAliveCount.
	Count int
}

// The keep-alive defaults: those of Go's net package (net.KeepAliveConfig
// in Dial and Listen), so a connection moved from net to the engine is
// dropped after the same silence: 15 s + 9 × 15 s = 2.5 minutes.
const (
	DefaultKeepAliveIdle     = 15 * time.Second
	DefaultKeepAliveInterval = 15 * time.Second
	DefaultKeepAliveCount    = 9
)

// Limits of the kernels' options: Linux takes TCP_KEEPIDLE and
// TCP_KEEPINTVL in seconds up to 32767 and TCP_KEEPCNT up to 127 (tcp(7)).
const (
	maxKeepAliveTime  = 32767 * time.Second
	maxKeepAliveCount = 127
)

// keepAliveSecs is k resolved for the kernel: whole seconds and a count.
type keepAliveSecs struct {
	on              bool
	idle, intvl, cn int
}

// resolve applies the defaults and checks the ranges.
func (k KeepAlive) resolve() (keepAliveSecs, error) {
	if k.Off {
		return keepAliveSecs{}, nil
	}
	idle, err := optSeconds("KeepAlive.Idle", k.Idle, DefaultKeepAliveIdle)
	if err != nil {
		return keepAliveSecs{}, err
	}
	intvl, err := optSeconds("KeepAlive.Interval", k.Interval, DefaultKeepAliveInterval)
	if err != nil {
		return keepAliveSecs{}, err
	}
	cn := k.Count
	switch {
	case cn == 0:
		cn = DefaultKeepAliveCount
	case cn < 0 || cn > maxKeepAliveCount:
		return keepAliveSecs{}, fmt.Errorf("%w: KeepAlive.Count %d: want 0 (the default) or 1 to %d", ErrBadOption, cn, maxKeepAliveCount)
	}
	return keepAliveSecs{on: true, idle: idle, intvl: intvl, cn: cn}, nil
}

// optSeconds is d in whole seconds, rounded up, or def's when d is 0.
func optSeconds(name string, d, def time.Duration) (int, error) {
	switch {
	case d == 0:
		d = def
	case d < 0 || d > maxKeepAliveTime:
		return 0, fmt.Errorf("%w: %s %v: want 0 (the default) or up to %v", ErrBadOption, name, d, maxKeepAliveTime)
	}
	return int((d + time.Second - 1) / time.Second), nil
}

// maxUserTimeout is the largest UserTimeout: Linux takes milliseconds in
// an int, Windows seconds.
const maxUserTimeout = (1<<31 - 1) * time.Millisecond

// checkUserTimeout checks ConnOptions.UserTimeout.
func checkUserTimeout(d time.Duration) error {
	if d < 0 || d > maxUserTimeout {
		return fmt.Errorf("%w: UserTimeout %v: want 0 (the kernel's) or up to %v", ErrBadOption, d, maxUserTimeout)
	}
	return nil
}

// tcpOptions are what a connection's options ask of its TCP socket beyond
// TCP_NODELAY, checked once per listener or connect.
type tcpOptions struct {
	ka          keepAliveSecs
	userTimeout time.Duration // 0: the kernel's
}

// tcpOptions checks and resolves o's TCP options.
func (o *ConnOptions) tcpOptions() (tcpOptions, error) {
	ka, err := o.KeepAlive.resolve()
	if err != nil {
		return tcpOptions{}, err
	}
	if err := checkUserTimeout(o.UserTimeout); err != nil {
		return tcpOptions{}, err
	}
	return tcpOptions{ka: ka, userTimeout: o.UserTimeout}, nil
}

// apply sets t on a TCP socket and returns what the kernel refused (the
// zero tcpOptions: nothing).
func (t tcpOptions) apply(fd sysfd) (refused tcpOptions) {
	if t.ka.on && setKeepAlive(fd, t.ka) != nil {
		refused.ka = t.ka
	}
	if t.userTimeout > 0 && setUserTimeout(fd, t.userTimeout) != nil {
		refused.userTimeout = t.userTimeout
	}
	return refused
}

// set applies t to a connection's socket, best effort: each option the
// kernel refuses is counted, and the connection goes on without it.
func (t tcpOptions) set(env *Env, fd sysfd) {
	r := t.apply(fd)
	if r.ka.on {
		env.Counters.SockoptErrors.Add(1)
	}
	if r.userTimeout > 0 {
		env.Counters.SockoptErrors.Add(1)
	}
}
