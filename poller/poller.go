// Package poller wraps the operating system's readiness or completion
// primitive behind one small contract. It reports events; it never reads,
// writes, logs or decides what an event means for a connection. Sockets
// (package sock) decide that.
//
// # The contract
//
// Every platform file in this package implements exactly this list, with
// these names and meanings:
//
//   - New() (*Poller, error) creates a poller and its wake-up channel. All
//     descriptors it creates are close-on-exec. Errors name the system call.
//   - (*Poller).Add(fd, token, interest) registers a descriptor. fd has the
//     platform type FD (an int on Linux, a windows.Handle on Windows). Events
//     for it carry token, an opaque 64-bit value chosen by the caller, so that
//     the caller can map an event back to its owner without the kernel
//     holding a Go pointer. The caller must make tokens unique for the life
//     of a registration and must never reuse one for another descriptor
//     while events for the old one may still be in flight. ReservedToken
//     belongs to the poller's wake-up channel; Add and Modify reject it with
//     ErrReservedToken.
//   - (*Poller).Modify(fd, token, interest) changes a registration. The
//     conditions that already hold are reported after it, edge-triggered
//     or not, as EPOLL_CTL_MOD re-polls (TestModifyReportsWhatAlreadyHolds).
//   - (*Poller).Remove(fd) deletes a registration. After Remove returns, no
//     Wait that starts later reports an event for fd; a Wait that already
//     dequeued one may still return it, which is why tokens carry a
//     generation that the caller checks. (A ring-backed poller applies
//     Add, Modify and Remove when its waiter next enters the kernel, so
//     there the next Wait, too, may report an event of the old
//     registration.)
//   - (*Poller).Wait(events, timeout) blocks until at least one event is
//     ready, the poller is woken, or timeout passes (negative: forever;
//     zero: do not block). It fills events from the front and returns how
//     many it filled; a platform may cap that number per call (Linux: 128),
//     leaving the rest for the next Wait. Wake-ups are consumed inside Wait and never appear in
//     events. An interrupted wait (EINTR) returns 0 and no error. Several
//     goroutines may Wait on one poller at once.
//   - (*Poller).Wake() makes one blocked or the next Wait return. Calls are
//     coalesced: many Wakes before the waiter runs cost at most one write
//     to the wake-up channel. Safe from any goroutine. A Wake is never lost:
//     some Wait returns after it, and a goroutine that looks for posted
//     work after that return sees everything posted before the Wake. With
//     several waiters, at least one returns; which one is unspecified.
//   - (*Poller).WakeAll() makes every blocked Wait and every later Wait
//     return at once, until Close. It is the stop signal for a poller that
//     several goroutines share; once it is called, Wake does nothing.
//     Safe from any goroutine.
//   - (*Poller).Close() releases the poller's descriptors. It does not
//     unblock a Wait in progress: call WakeAll, let the waiters leave, then
//     Close. A second Close, Wake or WakeAll after Close returns ErrClosed;
//     calling any other method after Close is a bug in the caller.
//
// Descriptor registration, removal and waiting may run on different
// goroutines at the same time; the kernel object serialises them.
//
// # Completion-based pollers
//
// Two backends also complete operations, reported by Wait as events with
// the Done flag (Op, Res, Err, Buf say which operation and how it ended):
//
//   - Linux, NewURing (uring_linux.go, uring_ops_linux.go, the ABI in
//     uring_abi_linux.go): an io_uring. Any goroutine may queue a request
//     (Recv, Send, Sendmsg, Cancel, CancelOp, ProvideBuffer, and Add,
//     Modify, Remove); only the one OS thread that waits on it enters the
//     kernel, submitting everything queued and collecting completions in
//     one call. That thread must stay locked (runtime.LockOSThread): it
//     becomes the ring's single issuer at its first Wait. Remove called
//     on that thread is applied before it returns (a poll request holds
//     the descriptor's file open). Several waiters are not supported.
//   - Windows (poller_windows.go): an I/O completion port. Add associates
//     a handle; operations are issued by their owners with an Operation,
//     whose OVERLAPPED the port hands back. Several waiters are supported.
package poller

// The one binding x/sys lacks (GetQueuedCompletionStatusEx) is generated
// from its //sys line in poller_windows.go. The directive lives here so
// that it runs on any host: go generate skips _windows files elsewhere.
//go:generate go run golang.org/x/sys/windows/mkwinsyscall -output zsyscall_windows.go poller_windows.go

import "math"

// Interest says which events a registration wants.
type Interest uint32

const (
	// Readable asks for events when the descriptor has data or a pending
	// connection, or the peer has closed its side.
	Readable Interest = 1 << iota
	// Writable asks for events when the descriptor can take more bytes, or a
	// non-blocking connect has finished.
	Writable
	// EdgeTriggered reports a condition once per change instead of for as
	// long as it holds. The caller must then drain until the OS says
	// "would block" or otherwise prove the descriptor is empty.
	EdgeTriggered
	// OneShot disables the registration after one event until Modify re-arms
	// it, so that only one waiter handles a descriptor at a time when
	// several goroutines wait on one poller.
	OneShot
)

// Flags says what an event reports.
type Flags uint32

const (
	// In: the descriptor is readable (data, a connection to accept, or EOF).
	In Flags = 1 << iota
	// Out: the descriptor is writable, or a connect finished.
	Out
	// Hup: the peer closed its sending side (or both sides); reads will
	// reach EOF after the data already queued.
	Hup
	// Err: the descriptor has a pending error (read it with SO_ERROR).
	Err
	// Done: the event is the completion of an operation (ring-backed
	// pollers only); Op, Res and Buf describe it.
	Done
	// More: the operation goes on and will complete again (multishot).
	More
	// Buffer: the operation filled the provided buffer Buf.
	Buffer
)

// Op names a completion-based operation. A ring-backed poller carries it
// in the request's user data beside the token and hands it back in
// Event.Op, so that an owner with several operations outstanding knows
// which one ended. 0 is readiness; 0xFE and 0xFF are the poller's own.
type Op uint8

// Event is one readiness report, or (with Done) one completion.
type Event struct {
	Token uint64 // the value given to Add, Modify or the operation
	Flags Flags
	Res   int32  // Done: the result, a count of bytes or a negated errno
	Op    Op     // Done: the operation, as given when it was queued
	Buf   uint16 // Buffer: the id of the provided buffer filled
	// Err: a completion that failed, as a Win32 error (IOCP). Res still
	// counts the bytes moved before the failure. Ring-backed pollers
	// report failures in Res instead.
	Err uint32
}

// ReservedToken is the token of the poller's own wake-up channel. Callers
// must not use it; Add and Modify reject it with ErrReservedToken.
const ReservedToken uint64 = math.MaxUint64

// RingStats counts a ring-backed poller's work (all zero for others).
type RingStats struct {
	Enters    uint64 // io_uring_enter calls
	Submitted uint64 // entries submitted
	Overflows uint64 // entries that waited for room in the queue
	Failed    uint64 // poll removals, cancellations and file-table updates that failed
	Files     int64  // descriptors holding a slot of the ring's file table now
}

// closedErr is what Wake and WakeAll return once the poller is stopping:
// ErrClosed after Close, nil before (a WakeAll already covers the call).
func (p *Poller) closedErr() error {
	if p.closed.Load() {
		return ErrClosed
	}
	return nil
}
