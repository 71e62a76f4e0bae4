package sock_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/pool"
	"github.com/ioreactor/reactor/sock"
)

// upper turns inbound letters to upper case: a filter that transforms.
type upper struct{ sock.PassFilter }

func (upper) Read(l *sock.Layer, b *pool.Buffer) {
	for x := b; x != nil; x = x.Next() {
		p := x.Bytes()
		copy(p, bytes.ToUpper(p))
	}
	l.PassRead(b)
}

// batch holds outbound bytes until it has at least min of them, then
// passes them down as one write: a filter that holds. Close flushes.
type batch struct {
	sock.PassFilter
	min  int
	held []byte
}

func (f *batch) Write(l *sock.Layer, bufs [][]byte, owned *pool.Buffer) error {
	for _, p := range bufs {
		f.held = append(f.held, p...)
	}
	if owned != nil {
		owned.Release()
	}
	if len(f.held) < f.min {
		return nil
	}
	p := f.held
	f.held = nil
	return l.PassWrite([][]byte{p}, nil)
}

func (f *batch) Close(l *sock.Layer) {
	if len(f.held) > 0 {
		l.PassWrite([][]byte{f.held}, nil)
		f.held = nil
	}
	l.PassClose()
}

// quit ends the connection when a read holds "QUIT": a filter that ends it.
type quit struct{ sock.PassFilter }

var errQuit = errors.New("peer said QUIT")

func (quit) Read(l *sock.Layer, b *pool.Buffer) {
	if bytes.Contains(b.Bytes(), []byte("QUIT")) {
		b.Release()
		l.Fail(errQuit)
		return
	}
	l.PassRead(b)
}

// TestUserFiltersTransformHoldAndEnd: a chain of the user's filters
// (top first: quit, upper, batch) under an echo. Bytes come back upper
// case once 16 have been written, and "quit" (upper-cased below quit's
// layer) ends the connection with the filter's error.
func TestUserFiltersTransformHoldAndEnd(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	closed := make(chan error, 1)
	ln, err := e.Listen("127.0.0.1:0", &echo.Handler{Reads: 1, OnClosed: func(c *reactor.Conn, err error) { closed <- err }},
		reactor.ListenOptions{ConnOptions: reactor.ConnOptions{Filters: []func() sock.Filter{
			func() sock.Filter { return quit{} },
			func() sock.Filter { return upper{} },
			func() sock.Filter { return &batch{min: 16} },
		}}})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, ln.Addr().String())
	defer c.Close()
	for _, s := range []string{"hello ", "filter ", "chain!"} {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, 19)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "HELLO FILTER CHAIN!" {
		t.Fatalf("echo %q", got)
	}
	if _, err := c.Write([]byte("quit")); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, closed, "OnClose"); !errors.Is(err, errQuit) {
		t.Fatalf("OnClose got %v, want the filter's error", err)
	}
}
