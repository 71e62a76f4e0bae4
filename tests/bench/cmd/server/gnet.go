package main

import (
	"fmt"
	"net"
	"os"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// gnetEcho echoes in the way gnet's documentation shows: take every byte
// buffered so far and write it back (Write sends at once and keeps what the
// kernel did not take in the connection's outbound buffer).
type gnetEcho struct {
	gnet.BuiltinEventEngine
	booted chan string // the listener's address, once the engine runs
	failed chan error
}

func (h *gnetEcho) OnBoot(eng gnet.Engine) gnet.Action {
	addr, err := gnetAddr(eng)
	if err != nil {
		h.failed <- err
		return gnet.Shutdown
	}
	h.booted <- addr
	return gnet.None
}

func (h *gnetEcho) OnTraffic(c gnet.Conn) gnet.Action {
	buf, err := c.Next(-1)
	if err != nil {
		return gnet.Close
	}
	if _, err := c.Write(buf); err != nil {
		return gnet.Close
	}
	return gnet.None
}

// gnetAddr is the address gnet bound: the engine only lends a duplicate of
// its listening descriptor.
func gnetAddr(eng gnet.Engine) (string, error) {
	fd, err := eng.Dup()
	if err != nil {
		return "", err
	}
	sa, err := unix.Getsockname(fd)
	if cerr := unix.Close(fd); cerr != nil && err == nil {
		err = os.NewSyscallError("close", cerr)
	}
	if err != nil {
		return "", os.NewSyscallError("getsockname", err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return (&net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}).String(), nil
	case *unix.SockaddrInet6:
		return (&net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}).String(), nil
	case *unix.SockaddrUnix:
		return "unix:" + sa.Name, nil
	}
	return "", fmt.Errorf("listener bound to %T", sa)
}

// serveGnet runs gnet with threads event loops, each locked to its OS
// thread as reactor's I/O threads are, on network (tcp, udp or unix). On
// udp each OnTraffic is one datagram, and Write answers its sender.
func serveGnet(addr, network string, threads int) (string, error) {
	h := &gnetEcho{booted: make(chan string, 1), failed: make(chan error, 1)}
	proto := network + "://"
	go func() {
		err := gnet.Run(h, proto+addr,
			gnet.WithMulticore(false),
			gnet.WithNumEventLoop(threads),
			gnet.WithLockOSThread(true),
			gnet.WithLogger(stderrLogger{}))
		if err == nil {
			err = fmt.Errorf("engine stopped")
		}
		h.failed <- err
	}()
	select {
	case a := <-h.booted:
		return a, nil
	case err := <-h.failed:
		return "", err
	}
}

// stderrLogger keeps gnet's warnings and errors and drops the rest. gnet's
// default logger writes to standard output, where this program promises
// one line only.
type stderrLogger struct{}

func (stderrLogger) Debugf(string, ...any) {}
func (stderrLogger) Infof(string, ...any)  {}
func (stderrLogger) Warnf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gnet: warning: "+format+"\n", args...)
}
func (stderrLogger) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gnet: error: "+format+"\n", args...)
}
func (stderrLogger) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gnet: fatal: "+format+"\n", args...)
	os.Exit(1)
}
