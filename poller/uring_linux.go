package poller

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor/internal/lock"
)

// The io_uring backend. A Poller made by NewURing owns one ring and is
// waited on by exactly one thread, its loop's. It implements the whole
// contract of package poller (readiness through multishot poll requests),
// and adds completion-based operations: Recv, Send, Sendmsg, Cancel. Their
// completions come out of Wait as events with the Done flag.
//
// Who touches what:
//   - Any goroutine may queue a request (Add, Remove, Recv, Send, ...): it
//     writes a submission queue entry under smu. Nothing is submitted then;
//     the waiting thread submits everything queued when it next enters the
//     kernel, so a request costs no system call of its own. A request
//     queued from outside the loop must be followed by a Wake when the
//     loop may sleep (package pool does that).
//   - Only the waiting thread calls io_uring_enter and reads completions.
//     The ring is created disabled and enabled by that thread's first
//     Wait, which makes it the ring's single issuer (the kernel then runs
//     completion work only when that thread asks for events, and never
//     interrupts it).
//
// The kernel's structures are described in include/uapi/linux/io_uring.h;
// this file spells out the few it needs, with their offsets checked where
// they are declared.

// tokenBits is how many low bits of the user data carry the caller's
// token; the operation sits above them. Tokens given to a ring-backed
// poller must fit (package pool's do: generation 24 bits, index 32 bits).
const tokenBits = 56

// MaxToken is the largest token a ring-backed poller accepts.
const MaxToken = 1<<tokenBits - 1

// internalData marks the poller's own requests (poll removals,
// cancellations); their failures are counted, never reported as events.
const internalData = uint64(0xFE) << tokenBits

// URingConfig sizes a ring.
type URingConfig struct {
	// Entries is the submission queue size (a power of two); 0 means 1024.
	// The completion queue is four times as large.
	Entries int
	// Buffers is how many slots the provided-buffer ring has (a power of
	// two, at most 32768); 0 means no buffer ring, and Recv with a
	// provided buffer fails.
	Buffers int
}

// ring is the io_uring state of a Poller.
type ring struct {
	fd       int
	features uint32
	mem      [3][]byte // mmapped: SQ ring, CQ ring (may alias), SQEs

	sqHead, sqTail *uint32
	sqMask         uint32
	sqEntries      uint32
	sqes           *[1 << 15]sqe

	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           *[1 << 17]cqe

	// Producers. smu guards tail (the next entry to fill; the kernel sees
	// it when it is stored into *sqTail) and overflow, which holds entries
	// queued while the ring was full, in order.
	smu      lock.Mutex[ringSmu]
	tail     uint32
	overflow []sqe

	// Registered files (uring_fixed_linux.go), guarded by smu.
	fixed fixedFiles

	// Waiter-only state.
	started bool
	tid     int            // the issuer thread (set by start; read by Remove)
	regs    map[int]uint64 // fd → token of its poll request (under smu)

	// Provided-buffer ring (group 0): 16-byte entries {addr, len, bid,
	// tail-or-reserved}; the shared tail is the last field of entry 0.
	bmu      lock.Mutex[ringBmu]
	bufMem   []byte
	bufMask  uint16
	bufTail  uint16
	bid0     uint16 // the bid stored in entry 0, rewritten with the tail
	bufReady bool   // registered with the kernel

	// Counters read by Stats.
	submitted, enters, overflows, failedInternal atomic.Uint64
	registered                                   atomic.Int64 // descriptors in the file table
}

// Lock classes (internal/lock) of ring's mutexes.
type (
	ringSmu struct{} // smu
	ringBmu struct{} // bmu
)

// NewURing creates a poller on a new io_uring instance. It returns an error
// wrapping ErrNotSupported when the kernel has io_uring disabled or
// lacks what the backend needs (Linux 6.1 or later).
func NewURing(cfg URingConfig) (*Poller, error) {
	entries := cfg.Entries
	if entries <= 0 {
		entries = 1024
	}
	if entries&(entries-1) != 0 || entries > 1<<15 {
		return nil, fmt.Errorf("poller: ring entries %d: want a power of two up to 32768", entries)
	}
	if b := cfg.Buffers; b < 0 || b > 1<<15 || b&(b-1) != 0 {
		return nil, fmt.Errorf("poller: buffer ring of %d: want a power of two up to 32768", b)
	}
	var pr params
	pr.flags = setupCQSize | setupSubmitAll | setupCoopTaskrun | setupSingleIssuer | setupDeferTaskrun | setupRDisabled
	pr.cqEntries = uint32(4 * entries)
	// unsafe: pr is passed by pointer for the duration of the call.
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&pr)), 0)
	if e != 0 {
		err := os.NewSyscallError("io_uring_setup", e)
		if e == unix.ENOSYS || e == unix.EPERM || e == unix.EINVAL {
			err = fmt.Errorf("%w: %w", ErrNotSupported, err)
		}
		return nil, err
	}
	if pr.features&(featSingleMmap|featNoDrop|featExtArg) != featSingleMmap|featNoDrop|featExtArg {
		unix.Close(int(fd))
		return nil, fmt.Errorf("%w: io_uring lacks single mmap, no-drop or extended wait arguments", ErrNotSupported)
	}
	r := &ring{fd: int(fd), features: pr.features, regs: make(map[int]uint64)}
	if err := r.mapRings(&pr); err != nil {
		r.unmap()
		unix.Close(r.fd)
		return nil, err
	}
	if cfg.Buffers > 0 {
		mem, err := unix.Mmap(-1, 0, cfg.Buffers*16, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANONYMOUS|unix.MAP_PRIVATE)
		if err != nil {
			r.unmap()
			unix.Close(r.fd)
			return nil, os.NewSyscallError("mmap", err)
		}
		r.bufMem = mem
		r.bufMask = uint16(cfg.Buffers - 1)
	}
	p, err := newWakeup()
	if err != nil {
		r.close()
		return nil, err
	}
	p.r = r
	// The wake-up eventfd is watched by a multishot poll request, queued
	// now and submitted by the first Wait.
	r.queue(sqe{opcode: opPollAdd, fd: int32(p.wakefd), len: pollAddMulti, opFlags: unix.POLLIN, userData: ReservedToken})
	return p, nil
}

func (r *ring) mapRings(pr *params) error {
	sqSize := int(pr.sqOff.array + pr.sqEntries*4)
	cqSize := int(pr.cqOff.cqes + pr.cqEntries*16)
	size := max(sqSize, cqSize) // one mapping serves both (featSingleMmap)
	m, err := unix.Mmap(r.fd, offSQRing, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return os.NewSyscallError("mmap", err)
	}
	r.mem[0] = m
	s, err := unix.Mmap(r.fd, offSQEs, int(pr.sqEntries)*64, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return os.NewSyscallError("mmap", err)
	}
	r.mem[2] = s
	// unsafe: every pointer below points into the mappings just made,
	// which are not Go memory and stay mapped until close unmaps them
	// after the last use. The offsets come from the kernel.
	base := unsafe.Pointer(&m[0])
	r.sqHead = (*uint32)(unsafe.Add(base, pr.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(base, pr.sqOff.tail))
	r.sqMask = *(*uint32)(unsafe.Add(base, pr.sqOff.ringMask))
	r.sqEntries = pr.sqEntries
	// The indirection array maps ring slot i to SQE i once and for all.
	array := unsafe.Slice((*uint32)(unsafe.Add(base, pr.sqOff.array)), pr.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	r.cqHead = (*uint32)(unsafe.Add(base, pr.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(base, pr.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(base, pr.cqOff.ringMask))
	r.cqes = (*[1 << 17]cqe)(unsafe.Add(base, pr.cqOff.cqes))
	r.sqes = (*[1 << 15]sqe)(unsafe.Pointer(&s[0]))
	r.tail = atomic.LoadUint32(r.sqTail)
	return nil
}

func (r *ring) unmap() {
	for i, m := range r.mem {
		if m != nil {
			unix.Munmap(m)
			r.mem[i] = nil
		}
	}
	if r.bufMem != nil {
		unix.Munmap(r.bufMem)
		r.bufMem = nil
	}
}

// close releases the ring. The kernel cancels whatever is still in flight.
func (r *ring) close() error {
	err := unix.Close(r.fd)
	r.unmap()
	if err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

// queue adds one entry to the submission queue, or to the overflow list
// when the queue is full. Safe from any goroutine.
func (r *ring) queue(e sqe) {
	r.smu.Lock()
	r.queueLocked(e)
	r.smu.Unlock()
}

func (r *ring) queueLocked(e sqe) {
	if len(r.overflow) == 0 && r.tail-atomic.LoadUint32(r.sqHead) < r.sqEntries {
		r.sqes[r.tail&r.sqMask] = e
		r.tail++
		// The kernel reads the tail with acquire semantics; the atomic
		// store orders the entry's bytes before it.
		atomic.StoreUint32(r.sqTail, r.tail)
		return
	}
	r.overflows.Add(1)
	r.overflow = append(r.overflow, e)
}

// refill moves overflowed entries into the queue as room allows. It
// returns how many entries are waiting for submission and whether more
// wait in the overflow list. Waiter only.
func (r *ring) refill() (uint32, bool) {
	r.smu.Lock()
	if len(r.overflow) > 0 {
		k := 0
		for k < len(r.overflow) && r.tail-atomic.LoadUint32(r.sqHead) < r.sqEntries {
			r.sqes[r.tail&r.sqMask] = r.overflow[k]
			r.tail++
			k++
		}
		atomic.StoreUint32(r.sqTail, r.tail)
		n := copy(r.overflow, r.overflow[k:])
		clear(r.overflow[n:])
		r.overflow = r.overflow[:n]
	}
	pending := r.tail - atomic.LoadUint32(r.sqHead)
	more := len(r.overflow) > 0
	r.smu.Unlock()
	return pending, more
}

// start enables the ring on the calling thread, which becomes its single
// issuer, and registers the buffer ring.
func (r *ring) start() error {
	r.started = true
	r.tid = unix.Gettid()
	if _, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerEnable, 0, 0, 0, 0); e != 0 {
		return os.NewSyscallError("io_uring_register", e)
	}
	r.registerFixed()
	if r.bufMem != nil {
		reg := bufReg{
			ringAddr:    uint64(uintptr(unsafe.Pointer(&r.bufMem[0]))),
			ringEntries: uint32(r.bufMask) + 1,
		}
		// unsafe: reg is passed by pointer for the call; the ring memory it
		// names is an anonymous mapping that lives until close.
		if _, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerPbufRing, uintptr(unsafe.Pointer(&reg)), 1, 0, 0); e != 0 {
			return os.NewSyscallError("io_uring_register", e)
		}
		r.bmu.Lock()
		r.bufReady = true
		r.bmu.Unlock()
	}
	return nil
}

// enter submits what is queued and, when wait is set, waits up to msec
// (negative: forever) for at least one completion. Waiter only.
func (r *ring) enter(wait bool, msec int) error {
	for {
		toSubmit, more := r.refill()
		var minComplete uintptr
		flags := uintptr(enterGetEvents)
		var arg getEventsArg
		var ts unix.Timespec
		var argp unsafe.Pointer
		if wait && !more {
			minComplete = 1
			if msec >= 0 {
				ts = unix.NsecToTimespec(int64(msec) * 1e6)
				arg.ts = uint64(uintptr(unsafe.Pointer(&ts)))
				flags |= enterExtArg
				argp = unsafe.Pointer(&arg)
			}
		}
		r.enters.Add(1)
		// unsafe: arg and ts are passed by pointer for the duration of the
		// call (arg holds the address of ts, which is live until return).
		n, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), minComplete, flags, uintptr(argp), unsafe.Sizeof(arg))
		_ = ts
		if e == 0 {
			r.submitted.Add(uint64(n))
			if uint32(n) < toSubmit {
				// SUBMIT_ALL stops only at an entry the kernel could not
				// read, which is a bug here.
				return fmt.Errorf("poller: io_uring_enter submitted %d of %d entries", n, toSubmit)
			}
			if more {
				continue // submit the rest of the overflow, then wait
			}
			return nil
		}
		switch e {
		case unix.ETIME, unix.EINTR:
			return nil
		case unix.EBUSY, unix.EAGAIN:
			// The completion queue is full (its overflow is held by the
			// kernel): reap before submitting more.
			return nil
		default:
			return os.NewSyscallError("io_uring_enter", e)
		}
	}
}

// reap moves completions into events and returns how many it filled;
// internal completions are consumed without an event. Waiter only.
func (r *ring) reap(p *Poller, events []Event) (int, error) {
	head := atomic.LoadUint32(r.cqHead)
	tail := atomic.LoadUint32(r.cqTail)
	filled := 0
	var err error
	for ; head != tail && filled < len(events); head++ {
		c := r.cqes[head&r.cqMask]
		switch {
		case c.userData == ReservedToken:
			if werr := p.drain(); werr != nil {
				err = werr
			}
			if c.flags&cqeFMore == 0 && !p.stopping.Load() {
				// The kernel ended the multishot request: arm it again.
				r.queue(sqe{opcode: opPollAdd, fd: int32(p.wakefd), len: pollAddMulti, opFlags: unix.POLLIN, userData: ReservedToken})
			}
		case c.userData>>tokenBits == internalData>>tokenBits:
			if c.res < 0 && c.res != -int32(unix.ENOENT) && c.res != -int32(unix.EALREADY) {
				r.failedInternal.Add(1)
			}
		case c.userData>>tokenBits == 0:
			// A poll request: readiness.
			if c.res < 0 {
				if c.res == -int32(unix.ECANCELED) {
					continue
				}
				events[filled] = Event{Token: c.userData, Flags: Err | In | Out}
			} else {
				events[filled] = Event{Token: c.userData, Flags: flagsOf(uint32(c.res))}
			}
			filled++
		default:
			ev := Event{Token: c.userData & MaxToken, Op: Op(c.userData >> tokenBits), Flags: Done, Res: c.res}
			if c.flags&cqeFMore != 0 {
				ev.Flags |= More
			}
			if c.flags&cqeFBuffer != 0 {
				ev.Flags |= Buffer
				ev.Buf = uint16(c.flags >> 16)
			}
			events[filled] = ev
			filled++
		}
	}
	atomic.StoreUint32(r.cqHead, head)
	return filled, err
}

func (r *ring) pendingCompletions() bool {
	return atomic.LoadUint32(r.cqHead) != atomic.LoadUint32(r.cqTail)
}

// uwait is Wait for a ring-backed poller.
func (p *Poller) uwait(events []Event, msec int) (int, error) {
	r := p.r
	if !r.started {
		if err := r.start(); err != nil {
			return 0, err
		}
	}
	n := min(len(events), maxBatch)
	if r.pendingCompletions() {
		// Completions are waiting: submit what is queued, take them.
		if err := r.enter(false, 0); err != nil {
			return 0, err
		}
		return r.reap(p, events[:n])
	}
	wait := msec != 0 && !p.stopping.Load()
	if err := r.enter(wait, msec); err != nil {
		return 0, err
	}
	return r.reap(p, events[:n])
}

// uctl queues a poll request for fd (Add, Modify). Modify removes the old
// request and adds a new one.
func (p *Poller) uctl(fd FD, token uint64, interest Interest, modify bool) error {
	if token == ReservedToken {
		return ErrReservedToken
	}
	if token > MaxToken {
		return fmt.Errorf("poller: token %#x does not fit a ring's %d bits", token, tokenBits)
	}
	var events uint32
	if interest&Readable != 0 {
		events |= unix.POLLIN | unix.POLLRDHUP
	}
	if interest&Writable != 0 {
		events |= unix.POLLOUT
	}
	var multi uint32
	if interest&OneShot == 0 {
		// Multishot poll reports a condition per wake-up of the
		// descriptor, that is per change: edge-triggered in effect.
		multi = pollAddMulti
		events |= unix.EPOLLET
	} else {
		events |= unix.EPOLLONESHOT
	}
	r := p.r
	r.smu.Lock()
	defer r.smu.Unlock()
	old, had := r.regs[fd]
	if modify != had {
		if modify {
			return os.NewSyscallError("io_uring poll update", unix.ENOENT)
		}
		return os.NewSyscallError("io_uring poll add", unix.EEXIST)
	}
	if had {
		r.queueLocked(removePoll(old))
	}
	r.regs[fd] = token
	r.queueLocked(sqe{opcode: opPollAdd, fd: int32(fd), len: multi, opFlags: events, userData: token})
	return nil
}

// removePoll ends the poll request with user data tok. It is an
// ASYNC_CANCEL, not a POLL_REMOVE: a POLL_REMOVE that meets the poll while
// its wake-up work is pending (the descriptor became ready since the last
// enter; with DEFER_TASKRUN that work waits for the next one) fails with
// EALREADY and leaves a multishot poll armed, holding the descriptor's file
// open after close, so a peer never saw end of stream. A cancellation
// marks the poll cancelled whoever runs it, and that work then ends it
// (-ECANCELED, which Wait drops). TestRingRemoveWhileTheEventIsPending.
func removePoll(tok uint64) sqe {
	return sqe{opcode: opAsyncCancel, addr: tok, userData: internalData, flags: sqeSkipSuccess}
}

// uremove queues the removal of fd's poll request.
//
// A poll request holds the descriptor's open file, so until the removal is
// applied a closed socket stays open (a closed SO_REUSEPORT listener went
// on taking connections nobody accepted). On the ring's own thread, where
// every owner tears its descriptors down, Remove therefore enters the
// kernel at once and returns with the removal applied; from any other
// goroutine it is applied at the next Wait.
func (p *Poller) uremove(fd FD) error {
	r := p.r
	r.smu.Lock()
	tok, ok := r.regs[fd]
	if !ok {
		r.smu.Unlock()
		return os.NewSyscallError("io_uring poll remove", unix.ENOENT)
	}
	delete(r.regs, fd)
	r.queueLocked(removePoll(tok))
	r.smu.Unlock()
	if r.started && unix.Gettid() == r.tid {
		// Submit, and run the completion work that releases the file.
		return r.enter(false, 0)
	}
	return nil
}
