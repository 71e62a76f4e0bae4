package poller_test

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor/poller"
)

// newRing makes a ring-backed poller with a buffer ring of slots entries.
// The test's goroutine stays on its OS thread: the first Wait makes that
// thread the ring's only issuer.
func newRing(t testing.TB, slots int) *poller.Poller {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	p, err := poller.NewURing(poller.URingConfig{Entries: 8, Buffers: slots})
	if err != nil {
		t.Fatalf("NewURing: %v (this kernel must allow io_uring)", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func TestRingReadinessReportsInWithToken(t *testing.T) {
	p := newRing(t, 0)
	a, b := newFDs(t).socketpair()
	add(t, p, a, 0x00ABCDEF12345678, poller.Readable|poller.EdgeTriggered)
	waitNone(t, p)
	write(t, b, "x")
	waitOne(t, p, 0x00ABCDEF12345678, poller.In)
	// Edge-triggered: nothing new, nothing reported.
	waitNone(t, p)
	write(t, b, "y")
	waitOne(t, p, 0x00ABCDEF12345678, poller.In)
}

func TestRingRejectsTokensThatDoNotFit(t *testing.T) {
	p := newRing(t, 0)
	a, _ := newFDs(t).socketpair()
	if err := p.Add(a, poller.MaxToken+1, poller.Readable); err == nil {
		t.Fatal("Add accepted a token wider than 56 bits")
	}
	if err := p.Add(a, poller.ReservedToken, poller.Readable); !errors.Is(err, poller.ErrReservedToken) {
		t.Fatalf("Add(ReservedToken) = %v", err)
	}
	if err := p.Recv(a, 1, 0, 0, false); err == nil {
		t.Fatal("Recv accepted operation 0, which is readiness")
	}
}

func TestRingRemoveStopsEvents(t *testing.T) {
	p := newRing(t, 0)
	a, b := newFDs(t).socketpair()
	add(t, p, a, 7, poller.Readable|poller.EdgeTriggered)
	waitNone(t, p)
	if err := p.Remove(a); err != nil {
		t.Fatal(err)
	}
	if err := p.Remove(a); err == nil {
		t.Fatal("second Remove succeeded")
	}
	waitNone(t, p) // submits the removal
	write(t, b, "x")
	waitNone(t, p)
}

func TestRingModifyChangesToken(t *testing.T) {
	p := newRing(t, 0)
	a, b := newFDs(t).socketpair()
	if err := p.Modify(a, 1, poller.Readable); err == nil {
		t.Fatal("Modify of an unregistered descriptor succeeded")
	}
	add(t, p, a, 1, poller.Readable|poller.EdgeTriggered)
	if err := p.Modify(a, 2, poller.Readable|poller.EdgeTriggered); err != nil {
		t.Fatal(err)
	}
	// A ring applies requests when the waiter next enters the kernel: an
	// edge before that may still carry the old token (the contract allows
	// it; tokens carry generations). After it, only the new token.
	waitNone(t, p)
	write(t, b, "x")
	events := wait(t, p, int(guard/time.Millisecond))
	if len(events) != 1 || events[0].Token != 2 {
		t.Fatalf("got %+v (ring %+v), want one event with token 2", events, p.RingStats())
	}
}

func TestRingRecvFillsAProvidedBuffer(t *testing.T) {
	p := newRing(t, 4)
	a, b := newFDs(t).socketpair()
	// Even a receive that reads end of stream takes a buffer: three.
	bufs := [][]byte{make([]byte, 8), make([]byte, 8), make([]byte, 8)}
	for i, x := range bufs {
		if _, err := p.ProvideBuffer(uint16(10+i), x); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Recv(a, 42, 1, 0, false); err != nil {
		t.Fatal(err)
	}
	waitNone(t, p) // the receive is pending: no data yet
	write(t, b, "hello")
	ev := waitDone(t, p, 42, 1)
	if ev.Res != 5 || ev.Flags&poller.Buffer == 0 || ev.Buf != 10 {
		t.Fatalf("completion %+v, want 5 bytes in buffer 10", ev)
	}
	if got := string(bufs[0][:5]); got != "hello" {
		t.Fatalf("buffer holds %q", got)
	}
	// The next receive takes the next buffer; end of stream reads 0.
	write(t, b, "again")
	if err := p.Recv(a, 42, 1, 0, false); err != nil {
		t.Fatal(err)
	}
	if ev := waitDone(t, p, 42, 1); ev.Res != 5 || ev.Buf != 11 || string(bufs[1][:5]) != "again" {
		t.Fatalf("completion %+v, buffer %q", ev, bufs[1][:5])
	}
	unix.Shutdown(b, unix.SHUT_WR)
	if err := p.Recv(a, 42, 1, 0, false); err != nil {
		t.Fatal(err)
	}
	if ev := waitDone(t, p, 42, 1); ev.Res != 0 {
		t.Fatalf("at end of stream got %+v, want 0 bytes", ev)
	}
	runtime.KeepAlive(bufs)
}

func TestRingRecvWithEmptyBufferRingFailsENOBUFS(t *testing.T) {
	p := newRing(t, 2)
	a, b := newFDs(t).socketpair()
	write(t, b, "x")
	if err := p.Recv(a, 1, 1, 0, false); err != nil {
		t.Fatal(err)
	}
	if ev := waitDone(t, p, 1, 1); ev.Res != -int32(unix.ENOBUFS) {
		t.Fatalf("got %+v, want -ENOBUFS", ev)
	}
}

func TestRingSendAndSendmsg(t *testing.T) {
	p := newRing(t, 0)
	a, b := newFDs(t).socketpair()
	msg := []byte("abc")
	if err := p.Send(a, 5, 2, msg); err != nil {
		t.Fatal(err)
	}
	if ev := waitDone(t, p, 5, 2); ev.Res != 3 {
		t.Fatalf("send completion %+v", ev)
	}
	parts := [][]byte{[]byte("de"), []byte("fgh")}
	iov := []unix.Iovec{{Base: &parts[0][0], Len: 2}, {Base: &parts[1][0], Len: 3}}
	hdr := &unix.Msghdr{Iov: &iov[0], Iovlen: 2}
	if err := p.Sendmsg(a, 5, 3, hdr); err != nil {
		t.Fatal(err)
	}
	if ev := waitDone(t, p, 5, 3); ev.Res != 5 {
		t.Fatalf("sendmsg completion %+v", ev)
	}
	runtime.KeepAlive(iov)
	got := make([]byte, 16)
	n, err := unix.Read(b, got)
	if err != nil || string(got[:n]) != "abcdefgh" {
		t.Fatalf("peer read %q, %v", got[:n], err)
	}
}

func TestRingCancelEndsPendingReceive(t *testing.T) {
	p := newRing(t, 2)
	a, _ := newFDs(t).socketpair()
	if _, err := p.ProvideBuffer(0, make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if err := p.Recv(a, 9, 1, 0, false); err != nil {
		t.Fatal(err)
	}
	waitNone(t, p)
	if err := p.Cancel(a); err != nil {
		t.Fatal(err)
	}
	if ev := waitDone(t, p, 9, 1); ev.Res != -int32(unix.ECANCELED) {
		t.Fatalf("got %+v, want -ECANCELED", ev)
	}
	if s := p.RingStats(); s.Failed != 0 {
		t.Fatalf("ring stats %+v: the cancellation itself failed", s)
	}
}

func TestRingWakeUnblocksWait(t *testing.T) {
	p := newRing(t, 0)
	waitNone(t, p)
	go func() {
		time.Sleep(20 * time.Millisecond)
		p.Wake()
	}()
	start := time.Now()
	if events := wait(t, p, int(guard/time.Millisecond)); len(events) != 0 {
		t.Fatalf("a wake-up surfaced as events %v", events)
	}
	if time.Since(start) >= guard {
		t.Fatal("Wake did not end the wait")
	}
	// Wakes keep working after the first (the multishot poll stays armed).
	for range 3 {
		p.Wake()
		wait(t, p, int(guard/time.Millisecond))
	}
	if err := p.WakeAll(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		wait(t, p, -1) // must not block
	}
}

func TestRingWaitAllocatesNothing(t *testing.T) {
	p := newRing(t, 4)
	a, b := newFDs(t).socketpair()
	buf := make([]byte, 64)
	events := make([]poller.Event, 8)
	allocs := testing.AllocsPerRun(100, func() {
		p.ProvideBuffer(0, buf)
		p.Recv(a, 1, 1, 0, false)
		unix.Write(b, buf[:1])
		for n := 0; n == 0; {
			n, _ = p.Wait(events, 1000)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per receive", allocs)
	}
}

func TestRingCloseReleasesDescriptors(t *testing.T) {
	before := fdCount(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p, err := poller.NewURing(poller.URingConfig{Buffers: 16})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, p, 0)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if after := fdCount(t); after != before {
		t.Fatalf("%d descriptors before, %d after Close", before, after)
	}
	if err := p.Close(); !errors.Is(err, poller.ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
}

func TestRingBundleFillsConsecutiveSlots(t *testing.T) {
	p := newRing(t, 4)
	if !p.Bundles() {
		t.Skip("this kernel lacks bundle receives (IORING_FEAT_RECVSEND_BUNDLE, Linux 6.10)")
	}
	a, b := newFDs(t).socketpair()
	bufs := make([][]byte, 4)
	for i := range bufs {
		bufs[i] = make([]byte, 8)
		// Ids out of slot order, to prove the slots decide.
		if slot, err := p.ProvideBuffer(uint16(3-i), bufs[i]); err != nil || slot != i {
			t.Fatalf("ProvideBuffer: slot %d, %v", slot, err)
		}
	}
	write(t, b, "0123456789abcdefghij") // 20 bytes: 8 + 8 + 4
	if err := p.Recv(a, 1, 1, 32, false); err != nil {
		t.Fatal(err)
	}
	ev := waitDone(t, p, 1, 1)
	if ev.Res != 20 || ev.Buf != 3 {
		t.Fatalf("bundle completion %+v, want 20 bytes from buffer id 3 (slot 0)", ev)
	}
	if got := string(bufs[0]) + string(bufs[1]) + string(bufs[2][:4]); got != "0123456789abcdefghij" {
		t.Fatalf("slots hold %q", got)
	}
	runtime.KeepAlive(bufs)
}

// TestRingRemoveOnItsThreadReleasesTheFile: a poll request holds the
// descriptor's open file. Remove on the ring's own thread applies the
// removal before it returns, so closing the descriptor right after really
// closes the socket: its port binds again at once.
func TestRingRemoveOnItsThreadReleasesTheFile(t *testing.T) {
	p := newRing(t, 0)
	waitNone(t, p) // the test's thread becomes the ring's issuer
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 8); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	port := sa.(*unix.SockaddrInet4).Port
	add(t, p, fd, 1, poller.Readable|poller.EdgeTriggered)
	waitNone(t, p) // the poll request is in the kernel now
	if err := p.Remove(fd); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	again, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(again)
	if err := unix.Bind(again, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("the port of a removed and closed listener is still taken: %v", err)
	}
}

// TestRingRemoveWhileTheEventIsPending: a poll whose descriptor became
// ready after the last Wait has its wake-up work still pending (the ring
// runs task work only when it collects completions). A removal submitted
// then must still end the poll, or the poll re-arms and keeps the
// descriptor's file open after close: the peer never reads end of stream.
// POLL_REMOVE failed this way with EALREADY, silently; a Unix-domain echo
// under load hung on it (docs/unix.md has the hunt).
func TestRingRemoveWhileTheEventIsPending(t *testing.T) {
	p := newRing(t, 0)
	waitNone(t, p) // the test's thread becomes the ring's issuer
	f := newFDs(t)
	for round := range 20 {
		a, b := f.socketpair()
		add(t, p, a, 1, poller.Readable|poller.EdgeTriggered)
		waitNone(t, p)   // the multishot poll is armed
		write(t, b, "x") // wakes it: its work waits for the next enter
		if err := p.Remove(a); err != nil {
			t.Fatal(err)
		}
		f.close(a)
		wait(t, p, 0) // a poll that survived would report the byte here
		// Once nothing holds the socket, its peer reads ECONNRESET (the
		// byte was never read) or end of stream; EAGAIN means the socket
		// is still open, held by the poll.
		n, err := unix.Read(b, make([]byte, 1))
		if err == unix.EAGAIN {
			t.Fatalf("round %d: the peer of a removed and closed socket reads EAGAIN: the poll still holds the file", round)
		}
		if err != nil && err != unix.ECONNRESET || err == nil && n != 0 {
			t.Fatalf("round %d: the peer read %d, %v; want end of stream or ECONNRESET", round, n, err)
		}
	}
}

// TestRingRegisteredFileCarriesOperations: a descriptor given a slot of
// the ring's file table (not before the ring's first Wait) receives and
// sends through it; once unregistered and closed, the file is let go at
// the next submission, so the peer reads end of stream.
func TestRingRegisteredFileCarriesOperations(t *testing.T) {
	p := newRing(t, 4)
	f := newFDs(t)
	a, b := f.socketpair()
	if p.RegisterFile(a) {
		t.Fatal("a descriptor got a slot before the ring's first Wait registered the table")
	}
	waitNone(t, p)
	if !p.RegisterFile(a) || p.RingStats().Files != 1 {
		t.Fatalf("no slot after the first Wait (%d registered)", p.RingStats().Files)
	}
	buf := make([]byte, 16)
	if _, err := p.ProvideBuffer(3, buf); err != nil {
		t.Fatal(err)
	}
	if err := p.Recv(a, 7, 1, 0, false); err != nil {
		t.Fatal(err)
	}
	write(t, b, "fixed")
	if ev := waitDone(t, p, 7, 1); ev.Res != 5 || ev.Buf != 3 || string(buf[:5]) != "fixed" {
		t.Fatalf("receive through the slot: %+v, buffer %q", ev, buf[:5])
	}
	msg := []byte("back")
	if err := p.Send(a, 7, 2, msg); err != nil {
		t.Fatal(err)
	}
	if ev := waitDone(t, p, 7, 2); ev.Res != 4 {
		t.Fatalf("send through the slot: %+v", ev)
	}
	got := make([]byte, 8)
	if n, err := unix.Read(b, got); err != nil || string(got[:n]) != "back" {
		t.Fatalf("peer read %q, %v", got[:n], err)
	}

	p.UnregisterFile(a)
	f.close(a)
	if p.RingStats().Files != 0 {
		t.Fatalf("%d registered after UnregisterFile", p.RingStats().Files)
	}
	// Until the update is submitted the slot holds the socket open.
	if _, err := unix.Read(b, got); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("peer read before the update was submitted: %v, want EAGAIN (the socket still open)", err)
	}
	waitNone(t, p)
	if n, err := unix.Read(b, got); n != 0 || err != nil {
		t.Fatalf("peer read %d, %v after the update; want end of stream", n, err)
	}
	runtime.KeepAlive(buf)
	runtime.KeepAlive(msg)
}

// TestRingRegisteredFileHighDescriptorAndReuse: a descriptor far above
// the others gets a slot too, an emptied slot is given again, and
// unregistering a descriptor without a slot changes nothing.
func TestRingRegisteredFileHighDescriptorAndReuse(t *testing.T) {
	p := newRing(t, 2)
	f := newFDs(t)
	a, b := f.socketpair()
	waitNone(t, p)
	const high = 3000
	if err := unix.Dup3(a, high, unix.O_CLOEXEC); err != nil {
		t.Fatalf("making descriptor %d: %v", high, err)
	}
	f.open[high] = true
	p.UnregisterFile(a) // never registered: nothing happens
	if !p.RegisterFile(high) || !p.RegisterFile(a) || p.RingStats().Files != 2 {
		t.Fatalf("%d registered, want 2", p.RingStats().Files)
	}
	p.UnregisterFile(a)
	if !p.RegisterFile(a) || p.RingStats().Files != 2 {
		t.Fatalf("re-registering after UnregisterFile: %d registered, want 2", p.RingStats().Files)
	}
	buf := make([]byte, 8)
	if _, err := p.ProvideBuffer(1, buf); err != nil {
		t.Fatal(err)
	}
	if err := p.Recv(high, 9, 1, 0, false); err != nil {
		t.Fatal(err)
	}
	write(t, b, "hi")
	if ev := waitDone(t, p, 9, 1); ev.Res != 2 || string(buf[:2]) != "hi" {
		t.Fatalf("receive on descriptor %d through its slot: %+v, buffer %q", high, ev, buf[:2])
	}
	p.UnregisterFile(high)
	p.UnregisterFile(a)
	if p.RingStats().Files != 0 {
		t.Fatalf("%d registered after unregistering both", p.RingStats().Files)
	}
	runtime.KeepAlive(buf)
}

// TestModifyReportsWhatAlreadyHolds: an edge-triggered registration
// changed by Modify reports the conditions that already hold (data left
// unread, room to write) without a new edge, on epoll (EPOLL_CTL_MOD
// re-polls) and on a ring (the new poll request checks at once). Owners
// that add writable interest only while they have something queued rely
// on it: the room may have come before the change.
func TestModifyReportsWhatAlreadyHolds(t *testing.T) {
	for name, p := range map[string]*poller.Poller{"epoll": newPoller(t), "ring": newRing(t, 0)} {
		t.Run(name, func(t *testing.T) {
			a, b := newFDs(t).socketpair()
			add(t, p, a, 1, poller.Readable|poller.EdgeTriggered)
			write(t, b, "x")
			waitOne(t, p, 1, poller.In)
			waitNone(t, p) // the byte stays unread: no new edge
			if err := p.Modify(a, 1, poller.Readable|poller.Writable|poller.EdgeTriggered); err != nil {
				t.Fatal(err)
			}
			waitOne(t, p, 1, poller.In|poller.Out)
			waitNone(t, p)
		})
	}
}
