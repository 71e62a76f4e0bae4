package sock

import (
	"net"
	"net/netip"
	"time"
)

// DialOptions tunes an outbound connect.
type DialOptions struct {
	// Timeout bounds the connect; 0 means no bound beyond the kernel's.
	// A TLS handshake after it has its own bound (HandshakeTimeout).
	Timeout time.Duration
	ConnOptions
}

// prepare checks the options of a Dial and returns the handler the new
// connection's socket calls.
func (o *DialOptions) prepare(addr string, h Handler) (Handler, error) {
	if o.TLS != nil {
		if err := CheckTLSConfig(o.TLS, time.Now(), false); err != nil {
			return nil, err
		}
	}
	host, _, _ := net.SplitHostPort(addr)
	return o.handler(h, false, host), nil
}

// apply gives a new connection what its options say beyond the chain.
func (o *ConnOptions) apply(c *Conn) {
	if o.WriteLimit != 0 {
		c.extra().limit = o.WriteLimit
	}
	if o.WriteTimeout > 0 {
		c.extra().writeTimeout = o.WriteTimeout
	}
	if o.SendBuffer > 0 || o.ReceiveBuffer > 0 {
		// Best effort, as TCP_NODELAY: a size the kernel refuses costs
		// throughput, not correctness.
		setBufferSizes(c.fd, o.SendBuffer, o.ReceiveBuffer)
	}
}

func (c *Conn) connectExpired() { c.dialFailed(ErrConnectTimeout) }

// dialFailed fails a connect in progress with err. Only the first of the
// connect's ends (its result, its timeout, a second event for the same
// failure) counts and closes.
func (c *Conn) dialFailed(err error) {
	if c.dialing.CompareAndSwap(true, false) {
		c.env.Counters.DialFailures.Add(1)
		c.fail(&DialError{Addr: c.dialAddr(), Err: err})
	}
}

// selfConnected reports whether a connect that succeeded reached its own
// socket: TCP's simultaneous open lets a connect to an unused port in the
// ephemeral range pick that very port as its source, and then it
// "connects" to itself. That is never what a dial meant (Go's net
// refuses it too), so it fails with ErrSelfConnect.
// A Unix-domain connection has no address to compare.
func (c *Conn) selfConnected() bool { return c.remote.IsValid() && localAddr(c.fd) == c.remote }

// dialSocket is the start of Dial on every platform: the address, the
// handler the socket will call (a filter chain over h when o asks for
// one), and a counted socket with TCP_NODELAY and o's keep-alive and user
// timeout set. Failures leave nothing behind.
func dialSocket(env *Env, addr string, h Handler, o *DialOptions) (netip.AddrPort, Handler, sysfd, error) {
	a, err := ParseAddr(addr)
	if err != nil {
		return a, nil, 0, err
	}
	tcp, err := o.tcpOptions()
	if err != nil {
		return a, nil, 0, err
	}
	h, err = o.prepare(addr, h)
	if err != nil {
		return a, nil, 0, err
	}
	fd, err := newSocket(a)
	if err != nil {
		return a, nil, 0, &DialError{Addr: addr, Err: err}
	}
	env.Counters.FDs.Add(1)
	if env.NoDelay {
		setNoDelay(fd) // best effort: a failure costs latency, not data
	}
	tcp.set(env, fd)
	return a, h, fd, nil
}

// dialConn makes the connection of a connect in progress.
func dialConn(env *Env, fd sysfd, h Handler, o *DialOptions, addr string, a netip.AddrPort) *Conn {
	c := newConn(env, env.Group.Pick(), fd, h)
	o.apply(c)
	c.extra().addr = addr
	c.remote = a
	c.dialing.Store(true)
	return c
}
