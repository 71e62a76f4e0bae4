package poller_test

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/ioreactor/reactor/poller"
)

// heapOps keeps the tests' operations on the heap. An operation the
// compiler could keep on a goroutine stack would move when the stack
// grows, and the port would complete the old copy.
var heapOps []*poller.Operation

func heapOp(op poller.Op) *poller.Operation {
	o := &poller.Operation{Op: op}
	heapOps = append(heapOps, o)
	return o
}

// rawConn connects an overlapped socket of ours to a net.Listener of Go's
// (whose sockets belong to the runtime's own port) and returns both ends.
func rawConn(t *testing.T) (windows.Handle, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := windows.WSASocket(windows.AF_INET, windows.SOCK_STREAM, windows.IPPROTO_TCP, nil, 0, windows.WSA_FLAG_OVERLAPPED|windows.WSA_FLAG_NO_HANDLE_INHERIT)
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := windows.Connect(s, &windows.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		windows.Closesocket(s)
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		windows.Closesocket(s)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		peer.Close()
		windows.Closesocket(s)
	})
	return s, peer
}

func TestPortCloseAndUseAfterClose(t *testing.T) {
	p, err := poller.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{"Close": p.Close(), "Wake": p.Wake(), "WakeAll": p.WakeAll()} {
		if !errors.Is(err, poller.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestPortWaitTimesOut(t *testing.T) {
	p := newPoller(t)
	start := time.Now()
	if ev := wait(t, p, 20); len(ev) != 0 {
		t.Fatalf("events on an idle port: %+v", ev)
	}
	if time.Since(start) < 15*time.Millisecond {
		t.Fatalf("Wait(20 ms) returned after %v", time.Since(start))
	}
}

func TestPortWakeUnblocksAndCoalesces(t *testing.T) {
	p := newPoller(t)
	for range 5 {
		if err := p.Wake(); err != nil {
			t.Fatal(err)
		}
	}
	if ev := wait(t, p, int(guard/time.Millisecond)); len(ev) != 0 {
		t.Fatalf("a wake-up surfaced as events %+v", ev)
	}
	// Five Wakes before the Wait: one packet, so nothing is left.
	start := time.Now()
	wait(t, p, 30)
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("coalesced Wakes left a second packet behind")
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		p.Wake()
	}()
	start = time.Now()
	wait(t, p, int(guard/time.Millisecond))
	if time.Since(start) >= guard {
		t.Fatal("Wake did not end a blocked Wait")
	}
}

func TestPortWakeAllReleasesEveryWaiter(t *testing.T) {
	p := newPoller(t)
	const waiters = 4
	var wg sync.WaitGroup
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			events := make([]poller.Event, 8)
			p.Wait(events, -1)
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := p.WakeAll(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(guard):
		t.Fatal("WakeAll did not release every waiter")
	}
	// And every later Wait returns at once.
	wait(t, p, -1)
}

func TestPortSendAndReceiveComplete(t *testing.T) {
	p := newPoller(t)
	s, peer := rawConn(t)
	if err := p.Add(s, 77, 0); err != nil {
		t.Fatal(err)
	}
	// A send of three buffers in one WSASend.
	parts := [][]byte{[]byte("ab"), []byte("cde"), []byte("f")}
	bufs := make([]windows.WSABuf, len(parts))
	for i, b := range parts {
		bufs[i] = windows.WSABuf{Len: uint32(len(b)), Buf: &b[0]}
	}
	send := heapOp(2)
	send.Arm()
	var n uint32
	err := windows.WSASend(s, &bufs[0], uint32(len(bufs)), &n, 0, &send.Overlapped, nil)
	if err != nil && err != windows.ERROR_IO_PENDING {
		t.Fatal(err)
	}
	ev := waitDone(t, p, 77, 2)
	if ev.Res != 6 || ev.Err != 0 {
		t.Fatalf("send completion %+v", ev)
	}
	got := make([]byte, 6)
	peer.SetDeadline(time.Now().Add(guard))
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "abcdef" {
		t.Fatalf("peer read %q, %v", got, err)
	}
	// A receive, pending until the peer writes.
	buf := make([]byte, 16)
	wb := windows.WSABuf{Len: uint32(len(buf)), Buf: &buf[0]}
	recv := heapOp(3)
	recv.Arm()
	var flags uint32
	err = windows.WSARecv(s, &wb, 1, &n, &flags, &recv.Overlapped, nil)
	if err != nil && err != windows.ERROR_IO_PENDING {
		t.Fatal(err)
	}
	peer.Write([]byte("xyz"))
	ev = waitDone(t, p, 77, 3)
	if ev.Res != 3 || string(buf[:3]) != "xyz" {
		t.Fatalf("receive completion %+v, buffer %q", ev, buf[:3])
	}
	runtime.KeepAlive(parts)
	runtime.KeepAlive(bufs)
	runtime.KeepAlive(send)
	runtime.KeepAlive(recv)
}

// TestPortDuplicatePacketIsDropped: a second packet for an operation that
// already completed (injected with Post, as a provider that queued a
// packet despite skip-on-success would) is dropped and counted, never
// reported twice.
func TestPortDuplicatePacketIsDropped(t *testing.T) {
	p := newPoller(t)
	op := heapOp(5)
	op.Arm()
	if err := p.Post(9, op, 4); err != nil {
		t.Fatal(err)
	}
	if err := p.Post(9, op, 4); err != nil {
		t.Fatal(err)
	}
	var got []poller.Event
	deadline := time.Now().Add(guard)
	for p.Duplicates() == 0 && time.Now().Before(deadline) {
		got = append(got, wait(t, p, 50)...)
	}
	if len(got) != 1 || got[0].Res != 4 || got[0].Op != 5 {
		t.Fatalf("events %+v, want exactly one completion", got)
	}
	if d := p.Duplicates(); d != 1 {
		t.Fatalf("%d duplicates counted, want 1", d)
	}
	// A packet that arrives after the operation was issued again (its
	// OVERLAPPED reads STATUS_PENDING while the new request is in flight)
	// is not taken for the new request's completion.
	op.Arm()
	op.Internal = uintptr(windows.STATUS_PENDING)
	if err := p.Post(9, op, 4); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(guard); p.Duplicates() < 2 && time.Now().Before(deadline); {
		if ev := wait(t, p, 50); len(ev) != 0 {
			t.Fatalf("a stale packet completed the operation's next request: %+v", ev)
		}
	}
	if d := p.Duplicates(); d != 2 {
		t.Fatalf("%d duplicates counted, want 2", d)
	}
	op.Internal = 0
	if !op.Complete() {
		t.Fatal("the request in flight lost its completion to the stale packet")
	}
	// An operation completed by its owner (inline) is not completed again.
	op.Arm()
	if !op.Complete() || op.Complete() {
		t.Fatal("Complete is not once per Arm")
	}
	runtime.KeepAlive(op)
}

// TestPortCancelCompletesWithAborted: CancelIoEx makes a pending receive
// complete with ERROR_OPERATION_ABORTED (995) — on Wine too, where a
// close without it may leave the packet waiting for the peer.
func TestPortCancelCompletesWithAborted(t *testing.T) {
	p := newPoller(t)
	s, _ := rawConn(t)
	if err := p.Add(s, 3, 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	wb := windows.WSABuf{Len: uint32(len(buf)), Buf: &buf[0]}
	recv := heapOp(1)
	recv.Arm()
	var n, flags uint32
	if err := windows.WSARecv(s, &wb, 1, &n, &flags, &recv.Overlapped, nil); err != windows.ERROR_IO_PENDING {
		t.Fatalf("WSARecv with nothing to read = %v, want pending", err)
	}
	if err := windows.CancelIoEx(s, nil); err != nil {
		t.Fatal(err)
	}
	ev := waitDone(t, p, 3, 1)
	if ev.Err != uint32(windows.ERROR_OPERATION_ABORTED) {
		t.Fatalf("cancelled receive completed with %+v, want error 995", ev)
	}
	runtime.KeepAlive(recv)
}
