package poller

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Registered files. An operation on a plain descriptor makes the kernel
// look the descriptor up and take a reference to its file (fget), and
// drop it when done (fput): atomic operations on the file's cache line,
// per receive and per send. A ring has a table of files of its own; an
// operation that names a slot of it (IOSQE_FIXED_FILE) skips both. The
// table is registered sparse when the ring starts, and a descriptor is put
// into a slot, or taken out, by an IORING_OP_FILES_UPDATE entry queued
// like any other, so registering costs no system call: the kernel applies
// the update when it reads that entry, before the entries queued after it.
//
// A slot holds the file open: a descriptor closed while its slot is full
// keeps its socket (a graceful close sends no FIN) until the update that
// empties the slot is submitted. UnregisterFile must therefore come before
// the close, and the owner must see that the ring enters soon after: on
// the ring's thread the loop enters at the end of its turn; elsewhere a
// Wake is needed, as for any request.

// fixedTableSize is the number of slots a ring registers: descriptors
// beyond it go on with plain lookups.
const fixedTableSize = 1 << 14

// fixedFiles is a ring's registered-file table, guarded by ring.smu.
type fixedFiles struct {
	ready  bool     // the sparse table is registered
	slotOf []uint32 // descriptor → 1 + its slot; 0: none
	free   []uint32 // slots to give, last first
	fdval  []int32  // slot → the descriptor its queued update reads
}

// emptySlot is what an update that empties a slot reads: -1, no file.
var emptySlot int32 = -1

// registerFixed registers the sparse table. A kernel that refuses it
// leaves the ring on plain descriptors. Waiter only, at start.
func (r *ring) registerFixed() {
	reg := rsrcRegister{nr: fixedTableSize, flags: rsrcRegisterSparse}
	// unsafe: reg is passed by pointer for the duration of the call.
	if _, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerFiles2, uintptr(unsafe.Pointer(&reg)), unsafe.Sizeof(reg), 0, 0); e != 0 {
		return
	}
	r.smu.Lock()
	f := &r.fixed
	f.fdval = make([]int32, fixedTableSize)
	f.free = make([]uint32, fixedTableSize)
	for i := range f.free {
		f.free[i] = uint32(fixedTableSize - 1 - i)
	}
	f.ready = true
	r.smu.Unlock()
}

// RegisterFile gives fd a slot of the ring's file table, so that the
// receives and sends queued on fd after it skip the kernel's descriptor
// lookup. It reports whether fd got one (not before the ring's first
// Wait, nor when the table is full or absent: fd then goes on as it is).
// The owner calls UnregisterFile before closing fd. Safe from any
// goroutine.
func (p *Poller) RegisterFile(fd FD) bool {
	r := p.r
	if r == nil || fd < 0 {
		return false
	}
	r.smu.Lock()
	defer r.smu.Unlock()
	f := &r.fixed
	if !f.ready || len(f.free) == 0 {
		return false
	}
	if int(fd) >= len(f.slotOf) {
		f.slotOf = append(f.slotOf, make([]uint32, int(fd)+1-len(f.slotOf))...)
	}
	if f.slotOf[fd] != 0 {
		return true
	}
	slot := f.free[len(f.free)-1]
	f.free = f.free[:len(f.free)-1]
	f.slotOf[fd] = slot + 1
	f.fdval[slot] = int32(fd)
	r.registered.Add(1)
	// unsafe: fdval lives as long as the ring, and the kernel reads it
	// when it consumes the entry.
	r.queueLocked(sqe{opcode: opFilesUpdate, fd: -1, off: uint64(slot), addr: uint64(uintptr(unsafe.Pointer(&f.fdval[slot]))), len: 1, userData: internalData, flags: sqeSkipSuccess})
	return true
}

// UnregisterFile empties fd's slot, if it has one: the operations queued
// before it keep the file, the slot is free for another descriptor, and
// the file is let go when the update is submitted. Safe from any
// goroutine.
func (p *Poller) UnregisterFile(fd FD) {
	r := p.r
	if r == nil || fd < 0 {
		return
	}
	r.smu.Lock()
	defer r.smu.Unlock()
	f := &r.fixed
	if int(fd) >= len(f.slotOf) || f.slotOf[fd] == 0 {
		return
	}
	slot := f.slotOf[fd] - 1
	f.slotOf[fd] = 0
	f.free = append(f.free, slot)
	r.registered.Add(-1)
	// unsafe: emptySlot is a package variable.
	r.queueLocked(sqe{opcode: opFilesUpdate, fd: -1, off: uint64(slot), addr: uint64(uintptr(unsafe.Pointer(&emptySlot))), len: 1, userData: internalData, flags: sqeSkipSuccess})
}

// queueOn queues e, an operation on fd, naming fd's slot instead of fd
// when it has one. The lookup and the queueing are one step under smu,
// so an entry never names a slot emptied before it.
func (r *ring) queueOn(e sqe, fd FD) {
	r.smu.Lock()
	if f := &r.fixed; int(fd) < len(f.slotOf) && f.slotOf[fd] != 0 {
		e.fd = int32(f.slotOf[fd] - 1)
		e.flags |= sqeFixedFile
	}
	r.queueLocked(e)
	r.smu.Unlock()
}

// RegisteredFiles is how many descriptors hold a slot of the ring's file
// table (0 for epoll).
func (p *Poller) RegisteredFiles() int64 {
	if p.r == nil {
		return 0
	}
	return p.r.registered.Load()
}
