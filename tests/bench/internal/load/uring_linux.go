package load

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor/poller"
)

// The io_uring driver (DriverURing). A connection's connect is watched by
// a one-shot poll request; once connected it has one multishot receive
// armed, filling buffers the client provides, and at most one send in
// flight (a streaming connection's is all the window has room for); its
// socket holds a slot of the ring's file table (RegisterFile), so its
// requests skip the kernel's descriptor lookup. Everything a loop turn
// queues is submitted by the next Wait, which also collects the
// completions: one io_uring_enter per turn, where the epoll driver makes a
// read and a write call per reply.

// Operations, carried beside the connection's id in each request.
const (
	opRecv poller.Op = 1
	opSend poller.Op = 2
)

// ringBufSize is the size of each provided buffer: a ping-pong reply up
// to 16 KiB lands in one, and a streaming receive takes up to 64 KiB.
func ringBufSize(cfg Config) int {
	if cfg.Mode == Stream || cfg.Size > 16<<10 {
		return 64 << 10
	}
	return 16 << 10
}

// ringBufCount is how many buffers the ring holds: room for every reply in
// flight to arrive between two turns, twice over (a streaming connection
// may have its whole window in flight). A ring that runs dry ends a
// multishot receive with ENOBUFS, which the client re-arms: slower, not
// wrong.
func ringBufCount(cfg Config) int {
	want := 2 * cfg.Conns * cfg.InFlight
	if cfg.Mode == Stream {
		want = cfg.Conns * (cfg.StreamWindow/ringBufSize(cfg) + 1)
	}
	n := 256
	for n < want && n < 1<<15 {
		n *= 2
	}
	return n
}

// newRing creates the ring and gives it its buffers, which it returns by
// id.
func newRing(cfg Config) (*poller.Poller, [][]byte, error) {
	n := ringBufCount(cfg)
	p, err := poller.NewURing(poller.URingConfig{Entries: 4096, Buffers: n})
	if err != nil {
		return nil, nil, err
	}
	size := ringBufSize(cfg)
	mem := make([]byte, n*size)
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = mem[i*size : (i+1)*size : (i+1)*size]
		if _, err := p.ProvideBuffer(uint16(i), bufs[i]); err != nil {
			p.Close()
			return nil, nil, err
		}
	}
	return p, bufs, nil
}

// ringHandle acts on one event of c: its connect's poll, a receive or a
// send.
func (cl *client) ringHandle(c *conn, ev poller.Event) error {
	switch {
	case ev.Flags&poller.Done == 0:
		// The connect's poll: one-shot, so it reports once, while c is
		// connecting.
		if err := cl.connected(c); err != nil {
			return err
		}
		// Blocking from here on: the ring then waits for room or data
		// itself instead of completing a request with EAGAIN. The ring
		// never blocks the thread.
		if err := unix.SetNonblock(c.fd, false); err != nil {
			return os.NewSyscallError("fcntl", err)
		}
		// A slot of the ring's file table, for the requests queued from
		// here on. False (none) leaves them on the plain descriptor: the
		// table is full or absent. closeAll's closing of the ring empties
		// the slot.
		cl.p.RegisterFile(c.fd)
		if err := cl.p.Recv(c.fd, uint64(c.id), opRecv, 0, true); err != nil {
			return err
		}
	case ev.Op == opRecv:
		if err := cl.received(c, ev); err != nil {
			return err
		}
	case ev.Op == opSend:
		if ev.Res <= 0 {
			if ev.Res == 0 {
				return errors.New("send: the socket took no byte")
			}
			return os.NewSyscallError("send", unix.Errno(-ev.Res))
		}
		if cl.streams(c) {
			c.sent += int64(ev.Res)
			c.sending = nil
			break
		}
		c.took += int(ev.Res)
		if c.took < len(c.sending) {
			return cl.p.Send(c.fd, uint64(c.id), opSend, c.sending[c.took:])
		}
		c.spare, c.sending, c.took = c.sending[:0], nil, 0
	default:
		return fmt.Errorf("completion of unknown operation %d", ev.Op)
	}
	if c.sending != nil {
		return nil
	}
	if cl.streams(c) {
		return cl.ringFill(c)
	}
	if len(c.wbuf) == 0 {
		return nil
	}
	// The queue goes out; the spare buffer takes what is queued next.
	c.sending, c.wbuf, c.spare = c.wbuf, c.spare, nil
	return cl.p.Send(c.fd, uint64(c.id), opSend, c.sending)
}

// received checks the bytes of one receive completion, gives its buffer
// back to the ring, and re-arms the receive if the kernel ended it.
func (cl *client) received(c *conn, ev poller.Event) error {
	switch {
	case ev.Res == -int32(unix.ENOBUFS):
		// The ring ran dry (and ended the multishot receive).
		if cl.counting {
			cl.noBuffers++
		}
	case ev.Res < 0:
		return os.NewSyscallError("recv", unix.Errno(-ev.Res))
	case ev.Res == 0:
		return errors.New("the server closed the connection")
	case ev.Flags&poller.Buffer == 0:
		return errors.New("a receive completed without a buffer")
	default:
		b := cl.bufs[ev.Buf]
		err := cl.onData(c, b[:ev.Res])
		if _, perr := cl.p.ProvideBuffer(ev.Buf, b); err == nil {
			err = perr
		}
		if err != nil {
			return err
		}
	}
	if ev.Flags&poller.More == 0 {
		return cl.p.Recv(c.fd, uint64(c.id), opRecv, 0, true)
	}
	return nil
}

// ringFill sends what the window allows (nextChunk) as c's one send in
// flight.
func (cl *client) ringFill(c *conn) error {
	p, ok := cl.nextChunk(c)
	if !ok {
		return nil
	}
	c.sending = p
	return cl.p.Send(c.fd, uint64(c.id), opSend, c.sending)
}
