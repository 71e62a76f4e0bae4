package main

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// serveNet is the baseline: Go's net package, a goroutine per connection
// copying through a buffer of its own.
func serveNet(addr string, bufSize int) (string, error) {
	ln, err := net.Listen("tcp", addr)
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
