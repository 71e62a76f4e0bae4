package poller

import (
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/windows"
)

// The IOCP backend. A Poller is one I/O completion port, shared by every
// thread that waits on it (the engine makes one per engine and lets all
// its I/O threads wait on it). It is completion-based: a handle is
// associated with the port once (Add) and every overlapped operation
// issued on it completes as one packet, reported by Wait as an event with
// the Done flag. The operation travels as an *Operation, whose OVERLAPPED
// is its first field, so the pointer the port hands back is the
// operation's.

// FD is the handle type that Add and Remove take.
type FD = windows.Handle

//sys	getQueuedCompletionStatusEx(port windows.Handle, entries *overlappedEntry, count uint32, removed *uint32, msec uint32, alertable bool) (err error) = kernel32.GetQueuedCompletionStatusEx

// overlappedEntry is OVERLAPPED_ENTRY (minwinbase.h), which x/sys lacks.
type overlappedEntry struct {
	key        uintptr
	overlapped *windows.Overlapped
	internal   uintptr
	bytes      uint32
}

// Keys the poller posts to itself. Tokens of pool.Table never take these
// values (a generation of 0 is never issued).
const (
	wakeKey = uintptr(ReservedToken)
	stopKey = uintptr(ReservedToken - 1)
)

// Operation is one overlapped request. Owners embed it (or keep it
// reachable) and must keep it, and every buffer the request names,
// reachable and unmoved from the call that issues it until its completion
// is reported: the kernel holds their addresses, which the garbage
// collector cannot see. Go's heap does not move objects, but a goroutine
// stack does when it grows: an Operation must live on the heap (a test
// once kept one on its stack, and the port completed the stale copy).
type Operation struct {
	windows.Overlapped
	// Op is the owner's name for the request, returned in Event.Op.
	Op Op
	// state is opIdle, opIssued or opDone; a packet for an operation not
	// in opIssued is a duplicate and is dropped (and counted).
	state atomic.Uint32
}

const (
	opIdle uint32 = iota
	opIssued
	opDone
)

// Arm marks the operation issued; call it before the system call that
// issues it (its packet may be dequeued on another thread before that
// call returns). It resets the OVERLAPPED.
func (o *Operation) Arm() {
	o.Overlapped = windows.Overlapped{}
	if !o.state.CompareAndSwap(opIdle, opIssued) && !o.state.CompareAndSwap(opDone, opIssued) {
		panic("poller: an operation was issued while still in flight")
	}
}

// Complete claims the operation's completion for the caller: true once
// per Arm. The poller calls it for every packet it dequeues; an owner
// calls it for a request that completed at once with skip-on-success on,
// and for one whose issuing call failed (no packet will come).
func (o *Operation) Complete() bool { return o.state.CompareAndSwap(opIssued, opDone) }

// Poller is an I/O completion port.
type Poller struct {
	port     windows.Handle
	pending  atomic.Bool // a wake packet is queued and not yet dequeued
	stopping atomic.Bool
	closed   atomic.Bool

	duplicates atomic.Uint64
}

// New creates a completion port.
func New() (*Poller, error) {
	port, err := windows.CreateIoCompletionPort(windows.InvalidHandle, 0, 0, 0)
	if err != nil {
		return nil, os.NewSyscallError("CreateIoCompletionPort", err)
	}
	return &Poller{port: port}, nil
}

// Add associates handle h with the port; every completion of an operation
// on h carries token. interest is ignored: on a completion port every
// issued operation completes. A handle is associated once, for its life.
func (p *Poller) Add(h FD, token uint64, interest Interest) error {
	if uintptr(token) == wakeKey || uintptr(token) == stopKey {
		return ErrReservedToken
	}
	if _, err := windows.CreateIoCompletionPort(h, p.port, uintptr(token), 0); err != nil {
		return os.NewSyscallError("CreateIoCompletionPort", err)
	}
	return nil
}

// Modify is not possible on a completion port: a handle's key is fixed
// when it is associated.
func (p *Poller) Modify(h FD, token uint64, interest Interest) error { return ErrNotSupported }

// Remove does nothing: a handle leaves its port when it is closed, and
// packets of operations cancelled by the close still arrive (their owners
// hold references until then).
func (p *Poller) Remove(h FD) error { return nil }

// maxBatch caps the packets one Wait dequeues.
const maxBatch = 128

// Wait dequeues up to min(len(events), 128) packets. Wake-ups are consumed
// here; a stop packet is passed on to the next waiter.
func (p *Poller) Wait(events []Event, msec int) (int, error) {
	var batch [maxBatch]overlappedEntry
	timeout := uint32(windows.INFINITE)
	if msec >= 0 {
		timeout = uint32(msec)
	}
	if p.stopping.Load() {
		timeout = 0
	}
	var got uint32
	err := getQueuedCompletionStatusEx(p.port, &batch[0], uint32(min(len(events), maxBatch)), &got, timeout, false)
	if err != nil {
		if err == windows.WAIT_TIMEOUT {
			return 0, nil
		}
		return 0, os.NewSyscallError("GetQueuedCompletionStatusEx", err)
	}
	filled := 0
	for _, e := range batch[:got] {
		switch e.key {
		case wakeKey:
			p.pending.Store(false)
			continue
		case stopKey:
			// Every waiter must see it: put it back for the next one.
			if err := windows.PostQueuedCompletionStatus(p.port, 0, stopKey, nil); err != nil && !p.closed.Load() {
				return filled, os.NewSyscallError("PostQueuedCompletionStatus", err)
			}
			continue
		}
		// unsafe: every OVERLAPPED issued on an associated handle is the
		// first field of an Operation that its owner keeps reachable until
		// this packet is handled (the contract of Operation).
		op := (*Operation)(unsafe.Pointer(e.overlapped))
		// Two guards against a packet that is not this operation's
		// current completion: one for an operation already completed
		// (the state), one for an operation issued again since (the
		// kernel writes the final status into the OVERLAPPED before it
		// queues the packet, so an incarnation still in flight reads
		// STATUS_PENDING there).
		if op == nil || windows.NTStatus(op.Internal) == windows.STATUS_PENDING || !op.Complete() {
			p.duplicates.Add(1)
			continue
		}
		ev := Event{Token: uint64(e.key), Flags: Done, Op: op.Op, Res: int32(e.bytes)}
		if st := windows.NTStatus(op.Internal); st != windows.STATUS_SUCCESS {
			ev.Err = uint32(statusErrno(st))
		}
		events[filled] = ev
		filled++
	}
	return filled, nil
}

// statusErrno converts a packet's NTSTATUS into a Win32 error. Wine reports
// operations ended by closesocket as STATUS_HANDLES_CLOSED, a warning-class
// status: it counts as an error here, like the ERROR_OPERATION_ABORTED
// Windows reports.
func statusErrno(st windows.NTStatus) windows.Errno {
	if st == windows.STATUS_HANDLES_CLOSED {
		return windows.ERROR_OPERATION_ABORTED
	}
	if e := st.Errno(); e != 0 {
		return e
	}
	return windows.ERROR_GEN_FAILURE
}

// Wake makes one blocked or the next Wait return. Calls are coalesced.
func (p *Poller) Wake() error {
	if p.stopping.Load() {
		return p.closedErr()
	}
	if !p.pending.CompareAndSwap(false, true) {
		return nil
	}
	if err := windows.PostQueuedCompletionStatus(p.port, 0, wakeKey, nil); err != nil {
		p.pending.Store(false)
		return os.NewSyscallError("PostQueuedCompletionStatus", err)
	}
	return nil
}

// WakeAll makes every blocked and every later Wait return until Close:
// one stop packet, which each waiter that dequeues it posts again.
func (p *Poller) WakeAll() error {
	if p.stopping.Swap(true) {
		return p.closedErr()
	}
	if err := windows.PostQueuedCompletionStatus(p.port, 0, stopKey, nil); err != nil {
		p.stopping.Store(false)
		return os.NewSyscallError("PostQueuedCompletionStatus", err)
	}
	return nil
}

// Close closes the port.
func (p *Poller) Close() error {
	if p.closed.Swap(true) {
		return ErrClosed
	}
	p.stopping.Store(true)
	if err := windows.CloseHandle(p.port); err != nil {
		return os.NewSyscallError("CloseHandle", err)
	}
	return nil
}

// Post queues a completion for op as if the kernel had completed it with
// n bytes and no error: an owner uses it to hand an operation that
// completed at once (skip-on-success) to the loop, and tests use it to
// inject a duplicate packet.
func (p *Poller) Post(token uint64, op *Operation, n uint32) error {
	if err := windows.PostQueuedCompletionStatus(p.port, n, uintptr(token), &op.Overlapped); err != nil {
		return os.NewSyscallError("PostQueuedCompletionStatus", err)
	}
	return nil
}

// Duplicates counts packets dropped because their operation had already
// completed.
func (p *Poller) Duplicates() uint64 { return p.duplicates.Load() }

// RingStats is zero: there is no ring on Windows.
func (p *Poller) RingStats() RingStats { return RingStats{} }

// IsRing is false on Windows.
func (p *Poller) IsRing() bool { return false }

// BufferSlots is 0 on Windows.
func (p *Poller) BufferSlots() int { return 0 }
