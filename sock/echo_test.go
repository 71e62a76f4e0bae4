package sock_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
)

// listenEcho starts an echo listener on a fresh engine.
func listenEcho(t *testing.T, cfg reactor.Config) (*reactor.Engine, string) {
	t.Helper()
	e := testutil.Engine(t, cfg)
	ln, err := e.Listen("127.0.0.1:0", &echo.Handler{Reads: max(cfg.MaxReads, 1)}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return e, ln.Addr().String()
}

// TestEchoManyConnections: 1,000 connections, each one message of a
// random size up to 1 MiB, every byte echoed and compared.
func TestEchoManyConnections(t *testing.T) {
	conns := 1000
	if testing.Short() {
		conns = 100
	}
	_, addr := listenEcho(t, reactor.Config{IOThreads: 2})
	echoMany(t, "tcp", addr, conns, 200)
}

// echoMany echoes one message on each of conns new connections to addr
// (network as net.Dial takes it), at most par at once so that descriptors
// and memory stay bounded. Sizes are log-uniform up to 1 MiB, so most
// are small and some are large; every byte is compared.
func echoMany(t *testing.T, network, addr string, conns, par int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := make([]int, conns)
	for i := range sizes {
		sizes[i] = 1 << rng.IntN(21) // 1 B … 1 MiB
		sizes[i] += rng.IntN(sizes[i])
		sizes[i] = min(sizes[i], 1<<20)
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- echoOnceOn(network, addr, sizes[i], uint64(i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// echoOnce sends size random bytes on a new TCP connection, reads them
// back and compares.
func echoOnce(addr string, size int, seed uint64) error { return echoOnceOn("tcp", addr, size, seed) }

// echoOnceOn is echoOnce on network ("tcp", "unix").
func echoOnceOn(network, addr string, size int, seed uint64) error {
	c, err := net.Dial(network, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	msg := testutil.RandomBytes(size, seed)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		werr <- err
	}()
	got := make([]byte, size)
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if err := <-werr; err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return &mismatchError{size: size}
	}
	return nil
}

type mismatchError struct{ size int }

func (e *mismatchError) Error() string { return "echo of a message was corrupted" }
