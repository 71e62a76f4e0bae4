package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ioreactor/reactor/internal/hist"
)

// Byte k of every connection's stream is k % patternPeriod. A prime period
// does not line up with any buffer or chunk size, so a buffer echoed
// twice, dropped or reordered shows as a mismatch.
const patternPeriod = 251

// readSize is the client's read buffer.
const readSize = 64 << 10

// newPattern returns the pattern from offset 0, long enough that a run of
// up to n bytes starting at any stream offset off is
// pat[off%patternPeriod:][:n].
func newPattern(n int) []byte {
	pat := make([]byte, n+patternPeriod)
	for i := range pat {
		pat[i] = byte(i % patternPeriod)
	}
	return pat
}

// Corruption is the first echoed byte of a connection that did not match
// the pattern.
type Corruption struct {
	Conn     int   `json:"conn"`
	Offset   int64 `json:"offset"`
	Expected byte  `json:"expected"`
	Got      byte  `json:"got"`
}

// totals are the live counters of all connections, for the progress line.
type totals struct {
	bytes     atomic.Int64
	messages  atomic.Int64
	datagrams atomic.Int64
}

// chunk is one write in flight.
type chunk struct {
	end   int64     // stream offset just past its last byte
	start time.Time // when its write began
}

// client drives one connection: write runs in one goroutine and read in
// another, since one goroutine writing then reading would deadlock once a
// chunk exceeds what the socket buffers hold.
type client struct {
	id     int
	conn   streamConn
	cfg    *Config
	pat    []byte
	totals *totals

	// progress (capacity 1) wakes the writer when the reader has made room
	// in the window; dead is closed when the connection ends early.
	progress chan struct{}
	dead     chan struct{}

	// mu guards the fields below, shared by the writer and the reader.
	mu          sync.Mutex
	queue       []chunk // chunks written and not wholly echoed, oldest first
	sent        int64   // bytes of the chunks in queue and before: written or being written
	received    int64   // bytes echoed and validated
	writeClosed bool    // the writer has shut its side down
	ended       bool    // the connection ended early; err or corrupt says why
	err         error
	corrupt     *Corruption

	// Owned by the reader until both goroutines have returned.
	hist     hist.Histogram
	messages uint64

	closeOnce sync.Once
	closeErr  error
}

// streamConn is a client's connection: TCP, or Unix-domain with -unix.
type streamConn interface {
	net.Conn
	CloseWrite() error
}

func newClient(id int, conn streamConn, cfg *Config, pat []byte, t *totals) *client {
	return &client{
		id: id, conn: conn, cfg: cfg, pat: pat, totals: t,
		progress: make(chan struct{}, 1),
		dead:     make(chan struct{}),
	}
}

// write sends random-sized chunks of the pattern until stop is closed,
// keeping at most cfg.Window bytes unechoed, then shuts its side down so
// the server closes once it has echoed everything.
func (c *client) write(stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(c.cfg.Seed, uint64(c.id)))
	var off int64
	for {
		select {
		case <-stop:
			c.closeWrite()
			return
		case <-c.dead:
			return
		default:
		}
		size := int64(c.cfg.MinSize + rng.IntN(c.cfg.MaxSize-c.cfg.MinSize+1))
		if !c.waitWindow(off+size, stop) {
			continue // stop or dead: the select above says which
		}
		// The chunk is queued before the write starts: its echo may arrive
		// before Write returns.
		c.mu.Lock()
		c.queue = append(c.queue, chunk{end: off + size, start: time.Now()})
		c.sent = off + size
		c.mu.Unlock()
		p := off % patternPeriod
		n, err := c.conn.Write(c.pat[p : p+size])
		off += int64(n)
		if err != nil {
			c.fail(fmt.Errorf("conn %d: write at offset %d: %w", c.id, off, err))
			return
		}
	}
}

// waitWindow waits until the bytes up to end fit in the window; false if
// stop or dead came first.
func (c *client) waitWindow(end int64, stop <-chan struct{}) bool {
	for {
		c.mu.Lock()
		room := end-c.received <= int64(c.cfg.Window)
		c.mu.Unlock()
		if room {
			return true
		}
		select {
		case <-c.progress:
		case <-stop:
			return false
		case <-c.dead:
			return false
		}
	}
}

func (c *client) closeWrite() {
	c.mu.Lock()
	c.writeClosed = true
	c.mu.Unlock()
	if err := c.conn.CloseWrite(); err != nil {
		c.fail(fmt.Errorf("conn %d: shutting down the write side: %w", c.id, err))
	}
}

// read validates the echo until end of stream, then closes the socket.
func (c *client) read() {
	defer c.close()
	buf := make([]byte, readSize)
	for {
		n, err := c.conn.Read(buf)
		if n > 0 && !c.check(buf[:n]) {
			return
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			c.finish()
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			c.mu.Lock()
			got, sent, closed := c.received, c.sent, c.writeClosed
			c.mu.Unlock()
			c.fail(fmt.Errorf("conn %d: no end of stream by the deadline: %d of %d bytes echoed (write side shut: %v)",
				c.id, got, sent, closed))
			return
		default:
			c.fail(fmt.Errorf("conn %d: read at offset %d: %w", c.id, c.offset(), err))
			return
		}
	}
}

// check validates got, the bytes echoed at the current offset, and
// records the latency of every chunk it completes. false if the
// connection must stop.
func (c *client) check(got []byte) bool {
	off := c.offset()
	p := off % patternPeriod
	want := c.pat[p : p+int64(len(got))]
	if !bytes.Equal(got, want) {
		i := 0
		for got[i] == want[i] {
			i++
		}
		c.corrupted(Corruption{Conn: c.id, Offset: off + int64(i), Expected: want[i], Got: got[i]})
		return false
	}
	now := time.Now()
	c.mu.Lock()
	if off+int64(len(got)) > c.sent {
		sent := c.sent
		c.mu.Unlock()
		c.fail(fmt.Errorf("conn %d: echo returned %d bytes, %d more than sent", c.id, off+int64(len(got)), off+int64(len(got))-sent))
		return false
	}
	c.received += int64(len(got))
	done := 0
	for done < len(c.queue) && c.queue[done].end <= c.received {
		c.hist.Record(now.Sub(c.queue[done].start))
		done++
	}
	c.queue = c.queue[done:]
	c.mu.Unlock()

	c.messages += uint64(done)
	c.totals.bytes.Add(int64(len(got)))
	c.totals.messages.Add(int64(done))
	select {
	case c.progress <- struct{}{}:
	default: // a wake-up is already pending
	}
	return true
}

// finish checks, at end of stream, that everything sent was echoed.
func (c *client) finish() {
	c.mu.Lock()
	got, sent, closed := c.received, c.sent, c.writeClosed
	c.mu.Unlock()
	switch {
	case !closed:
		c.fail(fmt.Errorf("conn %d: server closed the connection while the client was writing, after %d bytes", c.id, got))
	case got != sent:
		c.fail(fmt.Errorf("conn %d: end of stream after %d of %d bytes echoed", c.id, got, sent))
	}
}

func (c *client) offset() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.received
}

// fail ends the connection early with err. Only the first cause is kept:
// what follows (the other goroutine's read or write on the closed socket)
// is its consequence.
func (c *client) fail(err error) { c.end(err, nil) }

// corrupted ends the connection at its first mismatching byte.
func (c *client) corrupted(x Corruption) { c.end(nil, &x) }

func (c *client) end(err error, x *Corruption) {
	c.mu.Lock()
	first := !c.ended
	if first {
		c.ended, c.err, c.corrupt = true, err, x
	}
	c.mu.Unlock()
	if first {
		close(c.dead)
		c.close()
	}
}

// close closes the socket once, whichever goroutine gets there first.
func (c *client) close() {
	c.closeOnce.Do(func() { c.closeErr = c.conn.Close() })
}

// setDeadline bounds the rest of the connection's life: the drain after
// stop, or a hung server.
func (c *client) setDeadline(t time.Time) {
	if err := c.conn.SetDeadline(t); err != nil && !errors.Is(err, net.ErrClosed) {
		c.fail(fmt.Errorf("conn %d: setting the deadline: %w", c.id, err))
	}
}
