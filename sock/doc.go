// Package sock holds the engine's sockets: listeners, outbound connectors,
// stream connections and datagram sockets, driven by the I/O threads of
// package pool.
//
// The stream API is proactor-style, as on IOCP: the user issues a read and
// later receives a completion carrying a filled buffer; the user issues a
// write of one or many buffers and later receives a completion once the
// kernel has taken every byte. On Linux the kernel completes them on
// io_uring, or the engine emulates completions on edge-triggered epoll
// readiness; on Windows I/O completion ports complete them. A datagram
// socket (PacketConn) reads continuously instead and hands each datagram,
// whole, to OnPacket (docs/datagrams.md). Stream connections run over TCP
// or, on Linux, over Unix-domain sockets ("unix:PATH", docs/unix.md).
//
// # Callbacks
//
// Every callback of a connection runs on one of the engine's I/O threads,
// never on the goroutine that issued the operation, and the callbacks of
// one connection never run at the same time as each other. They must not
// block. A panic in a callback is recovered: that connection is closed
// with a *PanicError and the engine keeps serving the others.
//
// # Lifetime
//
// A connection is a reference count plus a closed bit, as in Go's
// internal/poll fdMutex. Every operation in flight (a system call, a
// queued task, an undelivered OnOpen) holds a reference; closing sets the
// bit and drops the connection's own reference; the holder of the last
// reference removes the descriptor from the poller and closes it. So a
// descriptor number is never reused while this connection could still
// touch it, OnClose runs exactly once and last, and every operation after
// close fails with an error that matches net.ErrClosed.
package sock
