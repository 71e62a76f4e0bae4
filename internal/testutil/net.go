package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// ErrEchoDiffers is what RoundTrip's error wraps when the echo came back
// whole but not as sent (its other errors are c's).
var ErrEchoDiffers = errors.New("testutil: echo differs")

// RoundTrip writes msg on c, reads len(msg) bytes back into got (which
// must be as long) and compares them: one echo, checked.
func RoundTrip(c io.ReadWriter, msg, got []byte) error {
	if _, err := c.Write(msg); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, got[:len(msg)]); err != nil {
		return err
	}
	if !bytes.Equal(got[:len(msg)], msg) {
		return fmt.Errorf("%w: %d bytes sent", ErrEchoDiffers, len(msg))
	}
	return nil
}

// Serve accepts on ln until it is closed and runs handle for each
// connection on a goroutine of its own; handle must close it. The
// returned stop closes ln and waits for every handler; the test's cleanup
// calls it too.
func Serve(t testing.TB, ln net.Listener, handle func(net.Conn)) (stop func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
	stop = sync.OnceFunc(func() { ln.Close(); wg.Wait() })
	t.Cleanup(stop)
	return stop
}

// WaitGroup waits for wg, failing t after d.
func WaitGroup(t testing.TB, wg *sync.WaitGroup, d time.Duration, what string) {
	t.Helper()
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not within %v", what, d)
	}
}

// Await returns the next value from ch, failing t after d.
func Await[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", d, what)
		panic("unreachable")
	}
}
