package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
)

// serveNet is the baseline: Go's net package, a goroutine per connection
// copying through a buffer of its own.
func serveNet(addr, network string, bufSize int) (string, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return "", err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				// net.Listener.Accept already retries the temporary errors
				// (EMFILE and the like) with a back-off.
				fmt.Fprintf(os.Stderr, "server: accept: %v\n", err)
				os.Exit(1)
			}
			go echoConn(c, bufSize)
		}
	}()
	if network == "unix" {
		return "unix:" + ln.Addr().String(), nil
	}
	return ln.Addr().String(), nil
}

// echoConn writes back what it reads until the peer goes away.
func echoConn(c net.Conn, bufSize int) {
	defer c.Close()
	buf := make([]byte, bufSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// serveNetUDP is the datagram baseline: one goroutine reads each datagram
// from Go's net UDP socket and writes it back to its sender, the way a
// Go UDP server is written.
func serveNetUDP(addr string, bufSize int) (string, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return "", err
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return "", err
	}
	go func() {
		buf := make([]byte, max(bufSize, 64<<10))
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				fmt.Fprintf(os.Stderr, "server: read: %v\n", err)
				os.Exit(1)
			}
			c.WriteToUDPAddrPort(buf[:n], from) // a failed datagram is the client's to miss
		}
	}()
	return c.LocalAddr().String(), nil
}
