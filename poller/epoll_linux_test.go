package poller_test

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor/poller"
	"golang.org/x/sys/unix"
)

func TestNewDescriptorsAreCloseOnExec(t *testing.T) {
	p := newPoller(t)
	for name, fd := range map[string]int{"epoll": poller.EpollFD(p), "eventfd": poller.WakeFD(p)} {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			t.Fatal(err)
		}
		if flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("%s descriptor %d is not close-on-exec", name, fd)
		}
	}
}

func TestCloseReleasesDescriptors(t *testing.T) {
	fdCount(t) // let the runtime open whatever reading a directory needs
	before := fdCount(t)
	p, err := poller.New()
	if err != nil {
		t.Fatal(err)
	}
	if got := fdCount(t); got != before+2 {
		t.Errorf("after New: %d descriptors, want %d", got, before+2)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fdCount(t); got != before {
		t.Errorf("after Close: %d descriptors, want %d", got, before)
	}
}

func TestUseAfterCloseReturnsErrClosed(t *testing.T) {
	p, err := poller.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{"Close": p.Close, "Wake": p.Wake, "WakeAll": p.WakeAll} {
		if err := f(); !errors.Is(err, poller.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func TestReadableReportsInWithToken(t *testing.T) {
	p, f := newPoller(t), newFDs(t)
	r, w := f.pipe()
	const token = 0xdeadbeef_00c0ffee // distinct halves: both must survive
	add(t, p, r, token, poller.Readable)
	waitNone(t, p)
	write(t, w, "x")
	waitOne(t, p, token, poller.In)
}

func TestTokensRoundTripAllBits(t *testing.T) {
	p, f := newPoller(t), newFDs(t)
	tokens := []uint64{0, 1, 1 << 31, 1 << 32, 1<<63 | 5, poller.ReservedToken - 1}
	for _, token := range tokens {
		r, w := f.pipe()
		add(t, p, r, token, poller.Readable)
		write(t, w, "x")
	}
	seen := map[uint64]bool{}
	for _, ev := range wait(t, p, int(guard/time.Millisecond)) {
		seen[ev.Token] = true
	}
	for _, token := range tokens {
		if !seen[token] {
			t.Errorf("token %#x not reported; got %v", token, seen)
		}
	}
}

func TestWritableReportsOut(t *testing.T) {
	p, f := newPoller(t), newFDs(t)
	a, _ := f.socketpair()
	add(t, p, a, 7, poller.Writable)
	if ev := waitOne(t, p, 7, poller.Out); ev.Flags&(poller.In|poller.Hup|poller.Err) != 0 {
		t.Errorf("flags %04b, want only Out", ev.Flags)
	}
}

func TestPeerCloseReportsHup(t *testing.T) {
	p, f := newPoller(t), newFDs(t)
	a, b := f.socketpair()
	add(t, p, a, 7, poller.Readable)
	f.close(b)
	waitOne(t, p, 7, poller.Hup|poller.In)
}

func TestPeerShutdownWriteReportsHup(t *testing.T) {
	p, f := newPoller(t), newFDs(t)
	a, b := f.socketpair()
	add(t, p, a, 7, poller.Readable)
	if err := unix.Shutdown(b, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	waitOne(t, p, 7, poller.Hup|poller.In) // EPOLLRDHUP alone
}

func TestWriterCloseReportsHupInOut(t *testing.T) {
	p, f := newPoller(t), newFDs(t)
	r, w := f.pipe()
	add(t, p, r, 7, poller.Readable)
	f.close(w)
	waitOne(t, p, 7, poller.Hup|poller.In|poller.Out) // EPOLLHUP implies both
}

func TestReaderCloseReportsErr(t *testing.T) {
	p, f := newPoller(t), newFDs(t)
	r, w := f.pipe()
	add(t, p, w, 7, poller.Writable)
	f.close(r)
	waitOne(t, p, 7, poller.Err|poller.In|poller.Out)
}

func TestLevelTriggeredKeepsReporting(t *testing.T) {
	p, f := newPoller(t), newFDs(t)
	r, w := f.pipe()
	add(t, p, r, 7, poller.Readable)
	write(t, w, "x")
	for range 3 {
		waitOne(t, p, 7, poller.In)
	}
}

func TestEdgeTriggeredReportsOnceUntilNewData(t *testing.T) {
	p, f := newPoller(t), newFDs(t)
	r, w := f.pipe()
	add(t, p, r, 7, poller.Readable|poller.EdgeTriggered)
	write(t, w, "x")
	waitOne(t, p, 7, poller.In)
	waitNone(t, p)
	write(t, w, "y")
	waitOne(t, p, 7, poller.In)
	waitNone(t, p)
}

func TestOneShotReportsOnceUntilModify(t *testing.T) {
	p, f := newPoller(t), newFDs(t)
	r, w := f.pipe()
	add(t, p, r, 7, poller.Readable|poller.OneShot)
	write(t, w, "x")
	waitOne(t, p, 7, poller.In)
	waitNone(t, p) // data still queued, but the registration is disarmed
	if err := p.Modify(r, 8, poller.Readable|poller.OneShot); err != nil {
		t.Fatal(err)
	}
	waitOne(t, p, 8, poller.In)
	waitNone(t, p)
}

func TestRemoveStopsEvents(t *testing.T) {
	p, f := newPoller(t), newFDs(t)
	r, w := f.pipe()
	add(t, p, r, 7, poller.Readable)
	write(t, w, "x")
	if err := p.Remove(r); err != nil {
		t.Fatal(err)
	}
	waitNone(t, p)
}

func TestErrorsNameTheSystemCall(t *testing.T) {
	p := newPoller(t)
	var serr *os.SyscallError
	if err := p.Remove(-1); !errors.As(err, &serr) || serr.Syscall != "epoll_ctl" || !errors.Is(err, unix.EBADF) {
		t.Errorf("Remove(-1): %v, want epoll_ctl: EBADF", err)
	}
}

func TestReservedTokenIsRejected(t *testing.T) {
	p, f := newPoller(t), newFDs(t)
	r, _ := f.pipe()
	if err := p.Add(r, poller.ReservedToken, poller.Readable); !errors.Is(err, poller.ErrReservedToken) {
		t.Fatalf("Add: %v, want ErrReservedToken", err)
	}
	add(t, p, r, 7, poller.Readable)
	if err := p.Modify(r, poller.ReservedToken, poller.Readable); !errors.Is(err, poller.ErrReservedToken) {
		t.Fatalf("Modify: %v, want ErrReservedToken", err)
	}
}

func TestWaitWithZeroTimeoutDoesNotBlock(t *testing.T) {
	p := newPoller(t)
	done := make(chan int)
	go func() {
		n, err := p.Wait(make([]poller.Event, 4), 0)
		if err != nil {
			t.Error(err)
		}
		done <- n
	}()
	select {
	case n := <-done:
		if n != 0 {
			t.Errorf("Wait(0) on an idle poller returned %d events", n)
		}
	case <-time.After(guard):
		t.Fatal("Wait with timeout 0 blocked")
	}
}

func TestWaitInterruptedReturnsZero(t *testing.T) {
	p := newPoller(t)
	tid := make(chan int)
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // so the signal reaches the thread in epoll_wait
		defer runtime.UnlockOSThread()
		tid <- unix.Gettid()
		n, err := p.Wait(make([]poller.Event, 4), -1)
		if err == nil && n != 0 {
			err = errors.New("interrupted Wait reported events")
		}
		done <- err
	}()
	target := <-tid
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(guard)
	for {
		// SIGURG is the runtime's preemption signal, so the runtime ignores
		// extra ones; epoll_wait is never restarted after a handler (signal(7)).
		if err := unix.Tgkill(unix.Getpid(), target, unix.SIGURG); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return
		case <-tick.C:
		case <-deadline:
			t.Fatal("Wait did not return after signals")
		}
	}
}

func TestWakeUnblocksWait(t *testing.T) {
	p := newPoller(t)
	done := make(chan int)
	go func() {
		n, err := p.Wait(make([]poller.Event, 4), -1)
		if err != nil {
			t.Error(err)
		}
		done <- n
	}()
	time.Sleep(10 * time.Millisecond) // most likely blocked by now; either way it must return
	if err := p.Wake(); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-done:
		if n != 0 {
			t.Errorf("woken Wait returned %d events, want 0", n)
		}
	case <-time.After(guard):
		t.Fatal("Wake did not unblock Wait")
	}
}

func TestWakesBeforeWaitCoalesce(t *testing.T) {
	p := newPoller(t)
	wakefd := poller.WakeFD(p)
	for range 1000 {
		if err := p.Wake(); err != nil {
			t.Fatal(err)
		}
	}
	if got := eventfdCount(t, wakefd); got != 1 {
		t.Fatalf("1000 Wakes left the eventfd at %d, want 1 (one write)", got)
	}
	waitNone(t, p)
	if got := eventfdCount(t, wakefd); got != 0 {
		t.Fatalf("Wait left the eventfd at %d, want it drained", got)
	}
	waitNone(t, p) // nothing pending any more
	if err := p.Wake(); err != nil {
		t.Fatal(err)
	}
	if got := eventfdCount(t, wakefd); got != 1 {
		t.Fatalf("Wake after a drain left the eventfd at %d, want 1", got)
	}
}

func TestWakeWithReadyEventsReportsOnlyEvents(t *testing.T) {
	p, f := newPoller(t), newFDs(t)
	r, w := f.pipe()
	add(t, p, r, 7, poller.Readable)
	write(t, w, "x")
	if err := p.Wake(); err != nil {
		t.Fatal(err)
	}
	waitOne(t, p, 7, poller.In)
	if got := eventfdCount(t, poller.WakeFD(p)); got != 0 {
		t.Fatalf("eventfd at %d, want drained", got)
	}
}

// A lost Wake leaves the waiter blocked with work posted; the guard catches it.
func TestWakeIsNeverLost(t *testing.T) {
	p := newPoller(t)
	const posters = 4
	rounds := 20000
	if testing.Short() {
		rounds = 1000
	}
	var posted atomic.Int64
	total := int64(posters * rounds)
	done := make(chan error)
	go func() {
		events := make([]poller.Event, 4)
		for seen := int64(0); seen < total; seen = posted.Load() {
			if _, err := p.Wait(events, -1); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range posters {
		go func() {
			for range rounds {
				posted.Add(1)
				if err := p.Wake(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(guard):
		t.Fatalf("waiter stuck with %d of %d posts seen: a Wake was lost", posted.Load(), total)
	}
}

func TestWakeAllReleasesEveryWaiter(t *testing.T) {
	p := newPoller(t)
	const waiters = 4
	done := make(chan error, waiters)
	for range waiters {
		go func() {
			events := make([]poller.Event, 4)
			for range 2 { // the blocked Wait, then a later one
				if n, err := p.Wait(events, -1); err != nil || n != 0 {
					done <- errors.Join(err, errors.New("woken Wait reported events"))
					return
				}
			}
			done <- nil
		}()
	}
	time.Sleep(10 * time.Millisecond) // most likely all blocked by now
	if err := p.WakeAll(); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(guard)
	for i := range waiters {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-timeout:
			t.Fatalf("%d of %d waiters still blocked after WakeAll", waiters-i, waiters)
		}
	}
	if err := p.Wake(); err != nil {
		t.Fatal(err)
	}
	waitNone(t, p) // still stopped
}

// WakeAll must survive a waiter that drains a plain Wake just as WakeAll
// writes; otherwise some waiter stays blocked.
func TestWakeAllSurvivesConcurrentWakes(t *testing.T) {
	rounds := 200
	if testing.Short() {
		rounds = 20
	}
	for range rounds {
		p, err := poller.New()
		if err != nil {
			t.Fatal(err)
		}
		var stop atomic.Bool
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 4 {
			wg.Go(func() {
				events := make([]poller.Event, 4)
				for !stop.Load() {
					if _, err := p.Wait(events, -1); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Go(func() {
			for !stop.Load() {
				if err := p.Wake(); err != nil {
					errs <- err
					return
				}
			}
		})
		stop.Store(true)
		if err := p.WakeAll(); err != nil {
			t.Fatal(err)
		}
		finished := make(chan struct{})
		go func() { wg.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(guard):
			t.Fatal("a waiter stayed blocked after WakeAll")
		}
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// The narrow case of the test above, forced: WakeAll writes after a Wait
// decided to drain a plain Wake but before its read, so the read takes both.
func TestWakeAllDuringDrainIsNotSwallowed(t *testing.T) {
	p := newPoller(t)
	if err := p.Wake(); err != nil {
		t.Fatal(err)
	}
	defer poller.SetDrainHook(func() {
		if err := p.WakeAll(); err != nil {
			t.Error(err)
		}
	})()
	waitNone(t, p)
	if got := eventfdCount(t, poller.WakeFD(p)); got == 0 {
		t.Fatal("the draining Wait swallowed WakeAll's write; later Waits would block")
	}
}

func TestWaitAllocatesNothing(t *testing.T) {
	p, f := newPoller(t), newFDs(t)
	r, w := f.pipe()
	add(t, p, r, 7, poller.Readable)
	write(t, w, "x")
	events := make([]poller.Event, 16)
	allocs := testing.AllocsPerRun(1000, func() {
		if err := p.Wake(); err != nil {
			t.Fatal(err)
		}
		if n, err := p.Wait(events, 0); n != 1 || err != nil {
			t.Fatalf("Wait: %d, %v; want 1 event", n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("Wake+Wait allocated %v times per run, want 0", allocs)
	}
}

func TestUnknownInterestPanics(t *testing.T) {
	p, f := newPoller(t), newFDs(t)
	r, _ := f.pipe()
	defer func() {
		if recover() == nil {
			t.Error("Add with unknown Interest bits did not panic")
		}
	}()
	p.Add(r, 7, poller.OneShot<<1)
}
