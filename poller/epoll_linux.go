package poller

import (
	"errors"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FD is the descriptor type that Add, Modify and Remove take.
type FD = int

// maxBatch caps the events one Wait collects. The batch lives on the
// waiter's stack, so concurrent waiters share nothing and Wait allocates
// nothing; ready events beyond the cap stay queued in the kernel for the
// next Wait. The Go runtime's netpoller uses the same figure.
const maxBatch = 128

// Poller is an epoll instance plus an eventfd that Wake and WakeAll write.
type Poller struct {
	// Wake-up protocol. pending is true from the moment a Wake wins the right to
	// write the eventfd until a Wait has read that write back, so at most one
	// write is outstanding and the Wakes in between cost one atomic operation.
	// No Wake is lost, because a Wake either
	//
	//   - wins pending and writes: the eventfd is readable, and stays so (it is
	//     level-triggered) until a Wait reads it and returns; or
	//   - finds pending true: the winner's write is still to come or unread, or
	//     its reader has read it but not yet stored false. A reader stores false
	//     only after its read and returns only after that store. Atomics are
	//     sequentially consistent, so the losing Wake, and the work its caller
	//     posted before it, come before that store: whoever called the reader's
	//     Wait sees the work when it looks afterwards.
	//
	// Reading before clearing is what makes this hold. Clearing first would let
	// a new winner write between the clear and the read; the read would swallow
	// that write and leave pending true with nothing to read, losing every later
	// Wake.
	//
	// WakeAll sets stopping and writes once. From then on no Wait reads the
	// eventfd, so it stays readable: after reporting a level-triggered item the
	// kernel puts it back on the ready list and wakes the next waiter, so every
	// blocked and every later epoll_wait returns. A Wait that checked stopping
	// just before it was set may read WakeAll's write; it checks stopping again
	// after its read and writes the value back.
	epfd     int
	wakefd   int
	r        *ring       // set for a ring-backed poller (NewURing): then epfd is unused
	pending  atomic.Bool // a Wake's write is outstanding
	stopping atomic.Bool // WakeAll or Close ran: Wake does nothing, Wait never drains
	closed   atomic.Bool
}

// testHookDrain, if set, runs in drain between the stopping check and the
// read, so that a test can land WakeAll in that window.
var testHookDrain func()

// New creates an epoll instance and its eventfd, both close-on-exec.
func New() (*Poller, error) {
	p, err := newWakeup()
	if err != nil {
		return nil, err
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, errors.Join(os.NewSyscallError("epoll_create1", err), closeFD(p.wakefd))
	}
	// Level-triggered on purpose: WakeAll relies on it (see Poller).
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setToken(&ev, ReservedToken)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, p.wakefd, &ev); err != nil {
		return nil, errors.Join(os.NewSyscallError("epoll_ctl", err), closeFD(p.wakefd), closeFD(epfd))
	}
	p.epfd = epfd
	return p, nil
}

// newWakeup makes a Poller with its wake-up eventfd only.
func newWakeup() (*Poller, error) {
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	return &Poller{epfd: -1, wakefd: wakefd}, nil
}

// Add registers fd; its events carry token.
func (p *Poller) Add(fd FD, token uint64, interest Interest) error {
	if p.r != nil {
		return p.uctl(fd, token, interest, false)
	}
	return p.ctl(unix.EPOLL_CTL_ADD, fd, token, interest)
}

// Modify changes the token and interest of fd, and re-arms a OneShot.
func (p *Poller) Modify(fd FD, token uint64, interest Interest) error {
	if p.r != nil {
		return p.uctl(fd, token, interest, true)
	}
	return p.ctl(unix.EPOLL_CTL_MOD, fd, token, interest)
}

// Remove deletes the registration of fd.
func (p *Poller) Remove(fd FD) error {
	if p.r != nil {
		return p.uremove(fd)
	}
	// A nil event is accepted since Linux 2.6.9 (epoll_ctl(2), BUGS).
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

func (p *Poller) ctl(op int, fd FD, token uint64, interest Interest) error {
	if token == ReservedToken {
		return ErrReservedToken
	}
	if interest&^(Readable|Writable|EdgeTriggered|OneShot) != 0 {
		panic("poller: unknown Interest bits")
	}
	var ev unix.EpollEvent
	if interest&Readable != 0 {
		// EPOLLRDHUP reports a peer's shutdown(SHUT_WR) without a read.
		ev.Events |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if interest&Writable != 0 {
		ev.Events |= unix.EPOLLOUT
	}
	if interest&EdgeTriggered != 0 {
		ev.Events |= unix.EPOLLET
	}
	if interest&OneShot != 0 {
		ev.Events |= unix.EPOLLONESHOT
	}
	setToken(&ev, token)
	if err := unix.EpollCtl(p.epfd, op, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// Wait fills events with at most min(len(events), 128) ready events and
// returns how many; len(events) must not be zero. If draining the wake-up
// channel fails, Wait returns the events it has with the error.
func (p *Poller) Wait(events []Event, msec int) (int, error) {
	if p.r != nil {
		return p.uwait(events, msec)
	}
	var batch [maxBatch]unix.EpollEvent
	n, err := unix.EpollWait(p.epfd, batch[:min(len(events), maxBatch)], msec)
	if err == unix.EINTR {
		return 0, nil
	}
	if err != nil {
		return 0, os.NewSyscallError("epoll_wait", err)
	}
	filled := 0
	for i := range n {
		if token := tokenOf(&batch[i]); token != ReservedToken {
			events[filled] = Event{Token: token, Flags: flagsOf(batch[i].Events)}
			filled++
		} else if werr := p.drain(); werr != nil {
			err = werr
		}
	}
	return filled, err
}

func flagsOf(e uint32) Flags {
	var f Flags
	if e&unix.EPOLLIN != 0 {
		f |= In
	}
	if e&unix.EPOLLOUT != 0 {
		f |= Out
	}
	if e&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		f |= Hup
	}
	// The kernel reports HUP and ERR whatever the interest (epoll_ctl(2));
	// In|Out makes sure the owner's read or write path notices.
	if e&unix.EPOLLHUP != 0 {
		f |= In | Out
	}
	if e&unix.EPOLLERR != 0 {
		f |= Err | In | Out
	}
	return f
}

// drain consumes a Wake: read first, then clear pending (see Poller).
func (p *Poller) drain() error {
	if p.stopping.Load() {
		return nil
	}
	if testHookDrain != nil {
		testHookDrain()
	}
	var count uint64
	// unsafe: the pointer becomes a uintptr in the call expression itself,
	// which keeps count alive and in place for the call (unsafe.Pointer
	// rule 4), and an eventfd read is exactly 8 bytes. Not unix.Read: under
	// -race it hands the buffer to the race detector, which moves it to the
	// heap, one allocation per drain.
	_, _, e := unix.Syscall(unix.SYS_READ, uintptr(p.wakefd), uintptr(unsafe.Pointer(&count)), unsafe.Sizeof(count))
	switch {
	case e == unix.EAGAIN:
		return nil // another waiter read it first and will clear pending
	case e != 0:
		return os.NewSyscallError("read", e)
	case p.stopping.Load():
		return p.signal() // we may have swallowed WakeAll's write: put it back
	}
	p.pending.Store(false)
	return nil
}

// Wake makes one blocked or the next Wait return.
func (p *Poller) Wake() error {
	if p.stopping.Load() {
		return p.closedErr()
	}
	if !p.pending.CompareAndSwap(false, true) {
		return nil
	}
	if err := p.signal(); err != nil {
		p.pending.Store(false) // nothing was written; let the next Wake try
		return err
	}
	return nil
}

// WakeAll makes every blocked and every later Wait return until Close.
func (p *Poller) WakeAll() error {
	if p.stopping.Swap(true) {
		return p.closedErr()
	}
	if err := p.signal(); err != nil {
		p.stopping.Store(false) // nothing was written; let WakeAll be retried
		return err
	}
	return nil
}

// signal adds one to the eventfd counter.
func (p *Poller) signal() error {
	one := uint64(1)
	// unsafe: as in drain; the kernel takes the value in host byte order.
	_, _, e := unix.Syscall(unix.SYS_WRITE, uintptr(p.wakefd), uintptr(unsafe.Pointer(&one)), unsafe.Sizeof(one))
	if e != 0 && e != unix.EAGAIN { // EAGAIN: the counter is full, so a wake is pending anyway
		return os.NewSyscallError("write", e)
	}
	return nil
}

// Close closes the epoll instance and the eventfd and returns the first error.
func (p *Poller) Close() error {
	if p.closed.Swap(true) {
		return ErrClosed
	}
	p.stopping.Store(true) // after closed, so that a Wake that sees it reports ErrClosed
	var err error
	if p.r != nil {
		err = p.r.close()
	} else {
		err = closeFD(p.epfd)
	}
	if werr := closeFD(p.wakefd); err == nil {
		err = werr
	}
	return err
}

func closeFD(fd int) error {
	if err := unix.Close(fd); err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

// The kernel's epoll_event is {u32 events; u64 data}, packed to 12 bytes on
// x86 and padded to 16 elsewhere; data is always the last 8 bytes. x/sys
// spells data as two int32 fields, Fd then Pad. These constants fail to
// compile (a negative uintptr overflows) unless Fd starts exactly 8 bytes
// before the end, so on every architecture Fd and Pad are the data union.
// The kernel copies data from epoll_ctl to epoll_wait without looking at it
// and this file is its only reader, so the low half in Fd and the high half
// in Pad round-trip whatever the byte order.
const (
	_ = unsafe.Sizeof(unix.EpollEvent{}) - unsafe.Offsetof(unix.EpollEvent{}.Fd) - 8
	_ = 8 - (unsafe.Sizeof(unix.EpollEvent{}) - unsafe.Offsetof(unix.EpollEvent{}.Fd))
)

func setToken(ev *unix.EpollEvent, token uint64) {
	ev.Fd, ev.Pad = int32(uint32(token)), int32(uint32(token>>32))
}

func tokenOf(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// Duplicates is 0: epoll has no completion packets to duplicate.
func (p *Poller) Duplicates() uint64 { return 0 }
