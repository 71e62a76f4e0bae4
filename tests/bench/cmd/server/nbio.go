package main

import (
	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/logging"
)

// serveNbio runs nbio with threads pollers, each locked to its OS thread as
// reactor's I/O threads are; OnData runs on the poller and writes the bytes
// back (Write keeps what the kernel did not take and flushes it on
// EPOLLOUT).
//
// On udp each OnData is one datagram, and Write answers its sender.
func serveNbio(addr, network string, threads int) (string, error) {
	logging.SetLevel(logging.LevelError)
	e := nbio.NewEngine(nbio.Config{
		Network:    network,
		Addrs:      []string{addr},
		NPoller:    threads,
		LockPoller: true,
	})
	e.OnData(func(c *nbio.Conn, data []byte) {
		if _, err := c.Write(data); err != nil {
			c.Close()
		}
	})
	if err := e.Start(); err != nil {
		return "", err
	}
	// Start replaced the address with the one bound.
	if network == "unix" {
		return "unix:" + e.Addrs[0], nil
	}
	return e.Addrs[0], nil
}
