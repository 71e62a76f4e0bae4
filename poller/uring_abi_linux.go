package poller

import "unsafe"

// The io_uring kernel ABI this backend uses, spelled out from
// include/uapi/linux/io_uring.h: the few opcodes, flags and structures it
// needs, with their sizes and offsets checked at compile time.

// Operation codes and flags of the kernel ABI (io_uring.h).
const (
	opNop         = 0
	opPollAdd     = 6
	opPollRemove  = 7
	opSendmsg     = 9
	opAsyncCancel = 14
	opSend        = 26
	opRecv        = 27
	opFilesUpdate = 20

	sqeFixedFile = 1 << 0

	sqeBufferSelect = 1 << 5
	sqeSkipSuccess  = 1 << 6

	pollAddMulti = 1 << 0

	cancelFD  = 1 << 1
	cancelAll = 1 << 0

	recvMultishot = 1 << 1 // IORING_RECV_MULTISHOT, in ioprio
	recvBundle    = 1 << 4 // IORING_RECVSEND_BUNDLE, in ioprio

	cqeFBuffer = 1 << 0
	cqeFMore   = 1 << 1

	enterGetEvents = 1 << 0
	enterExtArg    = 1 << 3

	setupCQSize        = 1 << 3
	setupSubmitAll     = 1 << 7
	setupCoopTaskrun   = 1 << 8
	setupSingleIssuer  = 1 << 12
	setupDeferTaskrun  = 1 << 13
	setupRDisabled     = 1 << 6
	featSingleMmap     = 1 << 0
	featNoDrop         = 1 << 1
	featExtArg         = 1 << 8
	featRecvBundle     = 1 << 14
	registerEnable     = 12
	registerFiles2     = 13
	rsrcRegisterSparse = 1 << 0
	registerPbufRing   = 22
	unregisterPbufRing = 23

	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000
)

// sqe is a submission queue entry (struct io_uring_sqe, 64 bytes).
type sqe struct {
	opcode   uint8
	flags    uint8
	ioprio   uint16
	fd       int32
	off      uint64
	addr     uint64
	len      uint32
	opFlags  uint32
	userData uint64
	bufIndex uint16
	persona  uint16
	spliceFD int32
	addr3    uint64
	_        uint64
}

// cqe is a completion queue entry (struct io_uring_cqe, 16 bytes).
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// params is struct io_uring_params (120 bytes).
type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqOffsets
	cqOff                                                                  cqOffsets
}

type sqOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

// getEventsArg is struct io_uring_getevents_arg (24 bytes).
type getEventsArg struct {
	sigmask   uint64
	sigmaskSz uint32
	minWait   uint32
	ts        uint64
}

// rsrcRegister is struct io_uring_rsrc_register (32 bytes).
type rsrcRegister struct {
	nr    uint32
	flags uint32
	resv2 uint64
	data  uint64
	tags  uint64
}

// bufReg is struct io_uring_buf_reg (40 bytes).
type bufReg struct {
	ringAddr    uint64
	ringEntries uint32
	bgid        uint16
	flags       uint16
	_           [3]uint64
}

// The sizes the kernel expects; a mismatch fails to compile.
const (
	_ = -uint(unsafe.Sizeof(sqe{}) ^ 64)
	_ = -uint(unsafe.Sizeof(cqe{}) ^ 16)
	_ = -uint(unsafe.Sizeof(params{}) ^ 120)
	_ = -uint(unsafe.Sizeof(getEventsArg{}) ^ 24)
	_ = -uint(unsafe.Sizeof(bufReg{}) ^ 40)
	_ = -uint(unsafe.Sizeof(rsrcRegister{}) ^ 32)
	_ = -uint(unsafe.Offsetof(sqe{}.userData) ^ 32)
	_ = -uint(unsafe.Offsetof(sqe{}.bufIndex) ^ 40)
)
