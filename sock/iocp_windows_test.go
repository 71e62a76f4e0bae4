package sock_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/seq"
	"github.com/ioreactor/reactor/sock"
)

// The provider lists the tests inject: Wine reports its TCP provider as
// IFS, so an injected non-IFS layered provider is the only way to run the
// path without skip-on-success here.
var (
	ifsProviders = []sock.Provider{{Name: "MSAFD Tcpip [TCP/IP]", Protocol: windows.IPPROTO_TCP, Flags: 0x20066}}
	lspProviders = append([]sock.Provider{{Name: "Layered filter [TCP/IP]", Protocol: windows.IPPROTO_TCP, Flags: 0x66}}, ifsProviders...)
)

// echoRun echoes 64 messages of growing size on each of 16 connections and
// returns what the clients got back, as one string per connection.
func echoRun(t *testing.T, e *reactor.Engine) []string {
	t.Helper()
	ln, err := e.Listen("127.0.0.1:0", &echo.Handler{Reads: 1}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	out := make([]string, 16)
	errs := make(chan error, len(out))
	for i := range out {
		go func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			var sb strings.Builder
			for k := 1; k <= 64; k++ {
				msg := testutil.RandomBytes(k*97, uint64(i*1000+k))
				if _, err := c.Write(msg); err != nil {
					errs <- err
					return
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil {
					errs <- err
					return
				}
				sb.Write(got)
			}
			out[i] = sb.String()
			errs <- nil
		}()
	}
	for range out {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestSkipOnSuccessOnAndOffGiveIdenticalResults: the same traffic through
// an engine with skip-on-success (all providers IFS) and one without (a
// non-IFS layered provider injected) echoes the same bytes; the first
// handles operations that completed at once without a packet, the second
// never sets the mode on a socket; each says what it chose.
func TestSkipOnSuccessOnAndOffGiveIdenticalResults(t *testing.T) {
	var results [][]string
	for _, tc := range []struct {
		name      string
		providers []sock.Provider
		wantMode  string
	}{
		{"all IFS", ifsProviders, "on: all 1 TCP providers are IFS"},
		{"a layered non-IFS provider", lspProviders, `off: TCP provider "Layered filter [TCP/IP]" is not IFS (flags 0x66)`},
	} {
		restore := sock.SetProviders(func() ([]sock.Provider, error) { return tc.providers, nil })
		e := testutil.Engine(t, reactor.Config{IOThreads: 2})
		restore()
		results = append(results, echoRun(t, e))
		s := e.Stats()
		if s.CompletionMode != tc.wantMode {
			t.Errorf("%s: CompletionMode %q, want %q", tc.name, s.CompletionMode, tc.wantMode)
		}
		if on := strings.HasPrefix(tc.wantMode, "on"); on {
			if s.SkipSockets == 0 || s.InlineCompletions == 0 {
				t.Errorf("%s: %d sockets with skip-on-success, %d inline completions; want both > 0", tc.name, s.SkipSockets, s.InlineCompletions)
			}
		} else if s.SkipSockets != 0 || s.InlineCompletions != 0 {
			t.Errorf("%s: %d sockets with skip-on-success, %d inline completions; want none", tc.name, s.SkipSockets, s.InlineCompletions)
		}
		if s.DuplicatePackets != 0 {
			t.Errorf("%s: %d duplicate packets", tc.name, s.DuplicatePackets)
		}
		t.Logf("%s: %s; skip sockets %d, inline completions %d", tc.name, s.CompletionMode, s.SkipSockets, s.InlineCompletions)
	}
	for i := range results[0] {
		if results[0][i] != results[1][i] {
			t.Fatalf("connection %d echoed differently with and without skip-on-success", i)
		}
	}
}

// TestInjectedDuplicateCompletionIsDropped: a second packet for a send
// that already completed is counted and dropped; the connection goes on
// echoing intact and closes once (a reference count below zero would
// panic).
func TestInjectedDuplicateCompletionIsDropped(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	opened := make(chan *reactor.Conn, 1)
	closes := make(chan error, 4)
	// Each duplicate is injected once the send it copies has been
	// handled (its OnWrite came): earlier, the packet could be taken for
	// that very send's completion. A provider that queues such packets is
	// non-IFS, which turns skip-on-success off (docs/windows.md), so the
	// engine never meets one mid-send.
	written := make(chan struct{}, 64)
	ln, err := e.Listen("127.0.0.1:0", &writeFuncHandler{
		funcHandler: funcHandler{
			onOpen:  func(c *reactor.Conn) { opened <- c; c.Read() },
			onRead:  echoRead,
			onClose: func(c *reactor.Conn, err error) { closes <- err },
		},
		onWrite: func(*reactor.Conn, seq.Number, int, error) { written <- struct{}{} },
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	client := dial(t, ln.Addr().String())
	srv := wait(t, opened, "OnOpen")
	for i := range 20 {
		msg := []byte(fmt.Sprintf("message %d", i))
		if err := echoOn(client, msg); err != nil {
			t.Fatal(err)
		}
		wait(t, written, "OnWrite")
		if err := sock.InjectDuplicateSend(srv); err != nil {
			t.Fatal(err)
		}
		// And the next send starts only once this duplicate is dropped.
		want := int64(i + 1)
		deadline := time.Now().Add(5 * time.Second)
		for e.Stats().DuplicatePackets < want && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.Stats().DuplicatePackets < 20 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := e.Stats().DuplicatePackets; n != 20 {
		t.Fatalf("%d duplicate packets dropped, want 20", n)
	}
	if err := echoOn(client, []byte("still whole")); err != nil {
		t.Fatal(err)
	}
	client.Close()
	wait(t, closes, "OnClose")
	select {
	case err := <-closes:
		t.Fatalf("a second OnClose: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestAcceptFailureOfOneClientRepostsTheAccept: accepts that complete with
// WSAECONNRESET or ERROR_NETNAME_DELETED (a client that reset before the
// accept finished; injected, as Wine cannot produce them) close that
// client's socket and post the accept again: the listener keeps serving
// everyone else and never fails.
func TestAcceptFailureOfOneClientRepostsTheAccept(t *testing.T) {
	var failed atomic.Int32
	restore := sock.SetAcceptHook(func(errno uint32) uint32 {
		switch n := failed.Add(1); {
		case n <= 3:
			return uint32(windows.WSAECONNRESET)
		case n <= 6:
			return uint32(windows.ERROR_NETNAME_DELETED)
		}
		return errno
	})
	defer restore()
	e, addr := listenEcho(t, reactor.Config{IOThreads: 2})
	served := 0
	for i := 0; i < 20 && served < 5; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if echoOn(c, []byte("after the failures")) == nil {
			served++
		}
		c.Close()
	}
	if served < 5 {
		t.Fatalf("only %d clients served after %d injected accept failures", served, min(failed.Load(), 6))
	}
	if f := failed.Load(); f < 6 {
		t.Fatalf("only %d accepts completed; the injected failures did not all run", f)
	}
	if s := e.Stats(); s.Accepts < 5 {
		t.Fatalf("Accepts %d", s.Accepts)
	}
}
