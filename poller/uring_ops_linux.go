package poller

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The completion operations a ring-backed poller adds to the contract:
// receives into provided buffers, sends, cancellations, and the buffer
// ring itself. Each queues one submission entry (uring_linux.go) and
// completes as an Event with the Done flag.

func (p *Poller) opData(token uint64, op Op) (uint64, error) {
	if p.r == nil {
		return 0, ErrNotSupported
	}
	if token > MaxToken || op == 0 || op == 0xFE || op == 0xFF {
		return 0, fmt.Errorf("poller: bad token %#x or operation %d", token, op)
	}
	return uint64(op)<<tokenBits | token, nil
}

// Recv queues one receive on fd into a provided buffer, which the kernel
// picks when data arrives: an idle descriptor holds no buffer. Its
// completion carries the bytes received (0 at end of stream) and, with
// the Buffer flag, the buffer's id; -ENOBUFS means the buffer ring was
// empty. With bundle > 0 (see Bundles) one receive may fill several
// buffers, up to bundle bytes: they are the ring's consecutive slots from
// the one holding the reported id, each filled whole but the last. With
// multishot the receive stays armed and completes once per arrival (with
// More) until it ends: an error, end of stream, an empty buffer ring or a
// cancellation (CancelOp) ends it with a completion without More. Safe
// from any goroutine.
func (p *Poller) Recv(fd FD, token uint64, op Op, bundle int, multishot bool) error {
	ud, err := p.opData(token, op)
	if err != nil {
		return err
	}
	e := sqe{opcode: opRecv, fd: int32(fd), flags: sqeBufferSelect, userData: ud}
	if bundle > 0 && p.Bundles() {
		e.ioprio = recvBundle
		e.len = uint32(bundle)
	}
	if multishot {
		e.ioprio |= recvMultishot
	}
	p.r.queueOn(e, fd)
	return nil
}

// Bundles reports whether Recv can fill several buffers at once (a
// ring-backed poller on Linux 6.10 or later).
func (p *Poller) Bundles() bool { return p.r != nil && p.r.features&featRecvBundle != 0 }

// Send queues one send of b on fd. b must stay reachable and unchanged
// until the completion is reported (Go's heap does not move objects; a
// stack can, so b must not live on one). Safe from any goroutine.
func (p *Poller) Send(fd FD, token uint64, op Op, b []byte) error {
	ud, err := p.opData(token, op)
	if err != nil {
		return err
	}
	p.r.queueOn(sqe{opcode: opSend, fd: int32(fd), addr: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))), len: uint32(len(b)), opFlags: unix.MSG_NOSIGNAL, userData: ud}, fd)
	return nil
}

// Sendmsg queues one sendmsg on fd: a gathered write of the iovecs msg
// names. msg, its iovec array and the bytes they point to must stay
// reachable and unchanged until the completion is reported, and must not
// live on a stack. Safe from any goroutine.
func (p *Poller) Sendmsg(fd FD, token uint64, op Op, msg *unix.Msghdr) error {
	ud, err := p.opData(token, op)
	if err != nil {
		return err
	}
	p.r.queueOn(sqe{opcode: opSendmsg, fd: int32(fd), addr: uint64(uintptr(unsafe.Pointer(msg))), opFlags: unix.MSG_NOSIGNAL, userData: ud}, fd)
	return nil
}

// CancelOp queues the cancellation of the operation queued with token and
// op (a multishot receive, say). Safe from any goroutine.
func (p *Poller) CancelOp(token uint64, op Op) error {
	ud, err := p.opData(token, op)
	if err != nil {
		return err
	}
	p.r.queue(sqe{opcode: opAsyncCancel, addr: ud, userData: internalData, flags: sqeSkipSuccess})
	return nil
}

// Cancel queues the cancellation of every operation in flight on fd.
// Each cancelled operation completes with -ECANCELED (or with its result,
// if it finished first). Safe from any goroutine.
func (p *Poller) Cancel(fd FD) error {
	if p.r == nil {
		return ErrNotSupported
	}
	p.r.queue(sqe{opcode: opAsyncCancel, fd: int32(fd), opFlags: cancelFD | cancelAll, userData: internalData, flags: sqeSkipSuccess})
	return nil
}

// ProvideBuffer puts b into the buffer ring under id bid, in the next
// slot (slots are used in order, wrapping), and returns that slot's index;
// a Recv may then fill it. The caller keeps b reachable while the kernel
// may use it and must not give the ring more buffers than it has slots.
// Safe from any goroutine.
func (p *Poller) ProvideBuffer(bid uint16, b []byte) (int, error) {
	r := p.r
	if r == nil || r.bufMem == nil {
		return 0, ErrNotSupported
	}
	r.bmu.Lock()
	i := r.bufTail & r.bufMask
	// unsafe: entry i lies inside the anonymous mapping bufMem; b is Go
	// heap memory the caller keeps reachable while the kernel may use it.
	e := unsafe.Pointer(&r.bufMem[int(i)*16])
	*(*uint64)(e) = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	*(*uint32)(unsafe.Add(e, 8)) = uint32(len(b))
	if i == 0 {
		r.bid0 = bid
	} else {
		*(*uint16)(unsafe.Add(e, 12)) = bid
	}
	r.bufTail++
	// Entry 0's bid and the shared tail share one 32-bit word: storing it
	// atomically publishes the entry (the kernel loads the tail with
	// acquire semantics) without a 16-bit atomic store.
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&r.bufMem[12])), uint32(r.bufTail)<<16|uint32(r.bid0))
	r.bmu.Unlock()
	return int(i), nil
}

// BufferSlots is the number of slots of the buffer ring (0 if none).
func (p *Poller) BufferSlots() int {
	if p.r == nil || p.r.bufMem == nil {
		return 0
	}
	return int(p.r.bufMask) + 1
}

// IsRing reports whether the poller is ring-backed (made by NewURing).
func (p *Poller) IsRing() bool { return p.r != nil }

// RingStats returns the ring's counters (zero for epoll).
func (p *Poller) RingStats() RingStats {
	if p.r == nil {
		return RingStats{}
	}
	return RingStats{Enters: p.r.enters.Load(), Submitted: p.r.submitted.Load(), Overflows: p.r.overflows.Load(),
		Failed: p.r.failedInternal.Load(), Files: p.r.registered.Load()}
}
