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

// fixedFiles is a ring's registered-file table, guarded by ring.smu. Its
// memory grows with the slots used, not with the table's size: a ring
// that serves few connections holds little.
type fixedFiles struct {
	ready  bool       // the sparse table is registered
	slotOf [][]uint32 // descriptor → 1 + its slot (0: none), in chunks of fdChunk made when first needed
	next   uint32     // slots from here up were never given
	freed  []uint32   // slots given back, to give again, last first
	fdval  [][]int32  // slot → the descriptor its queued update reads, in chunks that never move
}

// fdChunk is how many entries one chunk of fixedFiles.slotOf or .fdval
// holds. Chunks keep the table's memory in step with its use, without the
// garbage of a slice that grows by copying.
const fdChunk = 1024

// take gives a free slot, or false when the table is full.
func (f *fixedFiles) take() (uint32, bool) {
	if n := len(f.freed); n > 0 {
		slot := f.freed[n-1]
		f.freed = f.freed[:n-1]
		return slot, true
	}
	if f.next == fixedTableSize {
		return 0, false
	}
	slot := f.next
	f.next++
	if int(slot/fdChunk) == len(f.fdval) {
		f.fdval = append(f.fdval, make([]int32, fdChunk))
	}
	return slot, true
}

// cell is where slot's queued update reads its descriptor.
func (f *fixedFiles) cell(slot uint32) *int32 { return &f.fdval[slot/fdChunk][slot%fdChunk] }

// slot is 1 + fd's slot, or 0 when it has none.
func (f *fixedFiles) slot(fd FD) uint32 {
	if c := int(fd) / fdChunk; c < len(f.slotOf) && f.slotOf[c] != nil {
		return f.slotOf[c][int(fd)%fdChunk]
	}
	return 0
}

// setSlot records v (1 + a slot, or 0) for fd, making its chunk if needed.
func (f *fixedFiles) setSlot(fd FD, v uint32) {
	c := int(fd) / fdChunk
	if c >= len(f.slotOf) {
		f.slotOf = append(f.slotOf, make([][]uint32, c+1-len(f.slotOf))...)
	}
	if f.slotOf[c] == nil {
		f.slotOf[c] = make([]uint32, fdChunk)
	}
	f.slotOf[c][int(fd)%fdChunk] = v
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
	r.fixed.ready = true
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
	if !f.ready {
		return false
	}
	if f.slot(fd) != 0 {
		return true
	}
	slot, ok := f.take()
	if !ok {
		return false
	}
	f.setSlot(fd, slot+1)
	*f.cell(slot) = int32(fd)
	r.registered.Add(1)
	// unsafe: fdval's chunks never move and live as long as the ring,
	// and the kernel reads the cell when it consumes the entry.
	r.queueLocked(sqe{opcode: opFilesUpdate, fd: -1, off: uint64(slot), addr: uint64(uintptr(unsafe.Pointer(f.cell(slot)))), len: 1, userData: internalData, flags: sqeSkipSuccess})
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
	if f.slot(fd) == 0 {
		return
	}
	slot := f.slot(fd) - 1
	f.setSlot(fd, 0)
	f.freed = append(f.freed, slot)
	r.registered.Add(-1)
	// unsafe: emptySlot is a package variable.
	r.queueLocked(sqe{opcode: opFilesUpdate, fd: -1, off: uint64(slot), addr: uint64(uintptr(unsafe.Pointer(&emptySlot))), len: 1, userData: internalData, flags: sqeSkipSuccess})
}

// queueOn queues e, an operation on fd, naming fd's slot instead of fd
// when it has one. The lookup and the queueing are one step under smu,
// so an entry never names a slot emptied before it.
func (r *ring) queueOn(e sqe, fd FD) {
	r.smu.Lock()
	if v := r.fixed.slot(fd); v != 0 {
		e.fd = int32(v - 1)
		e.flags |= sqeFixedFile
	}
	r.queueLocked(e)
	r.smu.Unlock()
}
