package load

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor/poller"
)

// connKind says what a connection is for.
type connKind uint8

const (
	kindActive connKind = iota // carries the measured traffic
	kindIdle                   // echoes one message, then waits
	kinds
)

func (k connKind) String() string {
	if k == kindIdle {
		return "idle"
	}
	return "active"
}

// connState is where a connection is in its life.
type connState uint8

const (
	// stateConnecting: connect(2) was issued; the first writable (or
	// error) event says how it went: an epoll edge, or the ring's one-shot
	// poll.
	stateConnecting connState = iota
	// stateOpen: traffic flows.
	stateOpen
	// stateWaiting: an idle connection got its one message back; any
	// further byte is an error.
	stateWaiting
)

// epollInterest is what every connection is registered for on epoll,
// once: edge triggered, so a connection is never modified, and it costs a
// system call only when it has something to do.
const epollInterest = poller.Readable | poller.Writable | poller.EdgeTriggered

// conn is one connection's state.
type conn struct {
	id    int
	fd    int
	kind  connKind
	state connState
	size  int // message size (ping-pong and idle) or write size (stream)

	// DriverEpoll: writable is the last EPOLLOUT edge, until a write is
	// short.
	writable bool

	// DriverURing: sending is the send in flight (nil: none); spare is the
	// ping-pong buffer that becomes wbuf when sending goes out.
	sending []byte
	spare   []byte
	// took is how many bytes of the buffer being sent the kernel has
	// taken: of wbuf (DriverEpoll) or of sending (DriverURing, ping-pong).
	took int

	// Ping-pong: body is what follows the header of every message.
	// stamps[k % len] is when message k was queued (stream: when chunk k
	// was last offered). rbuf holds a reply that arrived in pieces; wbuf
	// is what is queued to send.
	body             []byte
	sendSeq, recvSeq uint64
	stamps           []time.Duration
	rbuf             []byte
	rlen             int
	wbuf             []byte

	// Stream: bytes the kernel took (DriverURing: of the sends completed),
	// and bytes read back and checked.
	sent, recvd int64

	// mark is recvSeq (stream: recvd) when the window started.
	mark int64
}

// issued is how many stream bytes c has handed the kernel: those sent and
// the send in flight (DriverURing). The kernel does not promise a send's
// completion before the receive completion that carries its echo, so an
// echo is checked against this, not against sent.
func (c *conn) issued() int64 { return c.sent + int64(len(c.sending)) }

// progress is how far c has got: replies, or bytes when streaming.
func (c *conn) progress(m Mode) int64 {
	if m == Stream {
		return c.recvd
	}
	return int64(c.recvSeq)
}

// open starts a non-blocking connect and registers the socket.
func (cl *client) open(kind connKind) error {
	typ := unix.SOCK_STREAM
	if cl.cfg.Datagram {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(cl.fam, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	c := &conn{id: len(cl.conns), fd: fd, kind: kind, size: cl.cfg.Size}
	// From here the connection is in cl.conns, and closeAll closes fd.
	cl.conns = append(cl.conns, c)
	cl.started[kind]++
	cl.connecting++
	// Small messages must go out at once, as the servers' replies do.
	if !cl.cfg.Datagram && cl.fam == unix.AF_INET {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			return os.NewSyscallError("setsockopt TCP_NODELAY", err)
		}
	}
	// A UDP socket connects at once (it only fixes the peer), and so does
	// a Unix-domain one (or fails: EAGAIN when the server's accept queue
	// is full); the writable event that follows opens it as it opens a
	// TCP one.
	if err := unix.Connect(fd, cl.sa); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		return fmt.Errorf("%s connection %d: %w", kind, c.id, os.NewSyscallError("connect", err))
	}
	interest := epollInterest
	if cl.ring() {
		// One event says how the connect went; then the connection
		// moves to completions (ringHandle).
		interest = poller.Writable | poller.OneShot
	}
	if err := cl.p.Add(fd, uint64(c.id), interest); err != nil {
		return err
	}
	if !cl.streams(c) {
		if kind == kindIdle {
			c.size = IdleMessageSize
		}
		inFlight := cl.cfg.InFlight
		if kind == kindIdle {
			inFlight = 1
		}
		off := c.id % patternPeriod
		c.body = cl.pat[off : off+c.size-headerSize]
		c.stamps = make([]time.Duration, inFlight)
		c.rbuf = make([]byte, c.size)
		c.wbuf = c.messageSlots(inFlight)
		if cl.ring() {
			c.spare = c.messageSlots(inFlight)
		}
	} else {
		c.stamps = make([]time.Duration, cl.cfg.StreamWindow/c.size+1)
	}
	return nil
}

// abort closes the connection with a reset. The descriptor is closed even
// if SO_LINGER could not be set.
func (c *conn) abort() error {
	var errs []error
	if err := unix.SetsockoptLinger(c.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		errs = append(errs, os.NewSyscallError("setsockopt SO_LINGER", err))
	}
	if err := unix.Close(c.fd); err != nil {
		errs = append(errs, os.NewSyscallError("close", err))
	}
	return errors.Join(errs...)
}

// connected checks how c's connect went, once the socket said it is done,
// and queues the first messages.
func (cl *client) connected(c *conn) error {
	soerr, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return os.NewSyscallError("getsockopt SO_ERROR", err)
	}
	if soerr != 0 {
		return os.NewSyscallError("connect", unix.Errno(soerr))
	}
	c.state = stateOpen
	if c.kind == kindActive {
		cl.connecting--
		cl.activeOpen++
	}
	switch {
	case c.kind == kindIdle:
		c.queue(cl.now)
	case !cl.streams(c):
		for range cl.cfg.InFlight {
			c.queue(cl.now)
		}
	}
	return nil
}

// handle acts on one readiness event of c (DriverEpoll).
func (cl *client) handle(c *conn, ev poller.Flags) error {
	if c.state == stateConnecting {
		if ev&(poller.Out|poller.Err|poller.Hup) == 0 {
			return nil
		}
		// The write below sends the first messages.
		if err := cl.connected(c); err != nil {
			return err
		}
	}
	if ev&poller.Out != 0 {
		c.writable = true
	}
	if ev&(poller.In|poller.Hup|poller.Err) != 0 {
		if err := cl.readAll(c, ev&(poller.Hup|poller.Err) != 0); err != nil {
			return err
		}
	}
	if cl.streams(c) {
		return cl.fill(c)
	}
	return c.flush()
}

// readAll reads until the socket is empty. On a stream a short read means
// it is (the next byte raises a new edge), unless the peer hung up, when
// only an error or end of stream ends the reading.
func (cl *client) readAll(c *conn, hup bool) error {
	for {
		n, err := unix.Read(c.fd, cl.rbuf)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return nil
		case err != nil:
			return os.NewSyscallError("read", err)
		case n == 0:
			return errors.New("the server closed the connection")
		}
		if err := cl.onData(c, cl.rbuf[:n]); err != nil {
			return err
		}
		// A datagram socket reads one datagram a call, so only
		// "would block" says it is empty.
		if n < len(cl.rbuf) && !hup && !cl.cfg.Datagram {
			return nil
		}
	}
}

// onData checks bytes that arrived on c.
func (cl *client) onData(c *conn, p []byte) error {
	if cl.streams(c) {
		return cl.onStream(c, p)
	}
	for len(p) > 0 {
		if c.state == stateWaiting {
			return fmt.Errorf("%d bytes arrived after the one echo", len(p))
		}
		var msg []byte
		if c.rlen == 0 && len(p) >= c.size {
			msg, p = p[:c.size], p[c.size:]
		} else {
			n := copy(c.rbuf[c.rlen:], p)
			c.rlen += n
			p = p[n:]
			if c.rlen < c.size {
				return nil
			}
			msg, c.rlen = c.rbuf, 0
		}
		if err := cl.onReply(c, msg); err != nil {
			return err
		}
	}
	return nil
}

// onReply checks one whole reply against the message it answers, counts
// it, and sends the next message (an idle connection sends none).
func (cl *client) onReply(c *conn, msg []byte) error {
	id, seq := binary.LittleEndian.Uint64(msg), binary.LittleEndian.Uint64(msg[8:])
	if id != uint64(c.id) || seq != c.recvSeq || !bytes.Equal(msg[headerSize:], c.body) {
		return fmt.Errorf("reply %d does not match: header (conn %d, message %d), body equal %t",
			c.recvSeq, id, seq, bytes.Equal(msg[headerSize:], c.body))
	}
	sentAt := c.stamps[c.recvSeq%uint64(len(c.stamps))]
	c.recvSeq++
	if c.kind == kindIdle {
		c.state = stateWaiting
		cl.connecting--
		cl.idleOpen++
		return nil
	}
	if cl.counting {
		cl.hist.Record(cl.now - sentAt)
		cl.messages++
		cl.bytes += int64(len(msg))
	}
	c.queue(cl.now)
	return nil
}

// messageSlots is an empty write buffer with room for k messages whose
// bodies are already in place: every message of c has the same body, and
// a write buffer always starts at a message's start and holds whole
// messages (queue adds one at a time, and it is emptied only once every
// byte has gone), so queue writes just the header. Copying the body for
// every message cost the client 3% of its CPU at 4 KiB (perf), and the
// client, not the server, is what limits a run on two CPUs.
func (c *conn) messageSlots(k int) []byte {
	b := make([]byte, k*c.size)
	for i := range k {
		copy(b[i*c.size+headerSize:], c.body)
	}
	return b[:0]
}

// queue adds the next message to c's write buffer; flush sends it.
func (c *conn) queue(now time.Duration) {
	k := len(c.wbuf)
	c.wbuf = c.wbuf[:k+c.size]
	binary.LittleEndian.PutUint64(c.wbuf[k:], uint64(c.id))
	binary.LittleEndian.PutUint64(c.wbuf[k+8:], c.sendSeq)
	c.stamps[c.sendSeq%uint64(len(c.stamps))] = now
	c.sendSeq++
}

// flush writes what is queued while the socket takes it.
func (c *conn) flush() error {
	for c.writable && c.took < len(c.wbuf) {
		n, blocked, err := writeSome(c.fd, c.wbuf[c.took:])
		if err != nil {
			return err
		}
		c.took += n
		c.writable = !blocked
	}
	if c.took == len(c.wbuf) {
		c.wbuf, c.took = c.wbuf[:0], 0
	}
	return nil
}

// writeSome makes one write(2) of p, retrying on EINTR. blocked reports
// that the socket took less than all of p (EAGAIN or a short write): its
// send buffer is full and the next EPOLLOUT edge says when there is room.
func writeSome(fd int, p []byte) (n int, blocked bool, err error) {
	for {
		n, err := unix.Write(fd, p)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return 0, true, nil
		case err != nil:
			return 0, false, os.NewSyscallError("write", err)
		}
		return n, n < len(p), nil
	}
}

// fill writes what the window allows (nextChunk) while the socket takes
// it.
func (cl *client) fill(c *conn) error {
	for c.writable {
		p, ok := cl.nextChunk(c)
		if !ok {
			return nil
		}
		n, blocked, err := writeSome(c.fd, p)
		if err != nil {
			return err
		}
		c.sent += int64(n)
		c.writable = !blocked
	}
	return nil
}

// nextChunk is what c streams next, as one run from c.sent: the rest of
// the chunk it is in, and every whole chunk after it that the window has
// room for; false when that is nothing. Each chunk start in the run is
// stamped now, so a chunk's stamp is when it was last offered: the offer
// the kernel took its first byte from. Called with no send in flight, so
// recvd ≤ sent and the run is at most the window.
func (cl *client) nextChunk(c *conn) ([]byte, bool) {
	w := int64(c.size)
	// The end of the last whole chunk the window holds, or of the chunk
	// already begun, whichever is further.
	end := max((c.recvd+int64(cl.cfg.StreamWindow))/w*w, (c.sent+w-1)/w*w)
	if end <= c.sent {
		return nil, false
	}
	for k := (c.sent + w - 1) / w; k*w < end; k++ {
		c.stamps[k%int64(len(c.stamps))] = cl.now
	}
	start := (c.sent + int64(c.id)) % patternPeriod
	return cl.pat[start : start+end-c.sent], true
}

// onStream checks echoed stream bytes and counts the chunks they complete.
func (cl *client) onStream(c *conn, p []byte) error {
	// First, so that the comparison below stays within the window's
	// pattern.
	if c.recvd+int64(len(p)) > c.issued() {
		return fmt.Errorf("%d bytes echoed, only %d sent", c.recvd+int64(len(p)), c.issued())
	}
	start := (c.recvd + int64(c.id)) % patternPeriod
	if want := cl.pat[start : start+int64(len(p))]; !bytes.Equal(p, want) {
		i := 0
		for p[i] == want[i] {
			i++
		}
		return fmt.Errorf("stream byte %d is %d, want %d", c.recvd+int64(i), p[i], want[i])
	}
	w := int64(c.size)
	before := c.recvd / w
	c.recvd += int64(len(p))
	if !cl.counting {
		return nil
	}
	cl.bytes += int64(len(p))
	for k := before; k < c.recvd/w; k++ {
		cl.hist.Record(cl.now - c.stamps[k%int64(len(c.stamps))])
		cl.messages++
	}
	return nil
}
