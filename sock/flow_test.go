package sock_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// TestWriteLimitRefusesAndKeepsTheConnection: a peer that does not read.
// Writes are accepted until the next would pass the limit, which is
// refused with a *WriteLimitError; the queue never passes the limit.
// Once the peer reads everything, writes are accepted again, and every
// byte accepted arrives in order.
func TestWriteLimitRefusesAndKeepsTheConnection(t *testing.T) {
	const limit = 1 << 20
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	opened := make(chan *reactor.Conn, 1)
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{onOpen: func(c *reactor.Conn) { opened <- c }},
		reactor.ListenOptions{ConnOptions: reactor.ConnOptions{WriteLimit: limit}})
	if err != nil {
		t.Fatal(err)
	}
	client := dial(t, ln.Addr().String())
	defer client.Close()
	srv := wait(t, opened, "OnOpen")

	var sent int64
	writeUntilRefused := func() {
		t.Helper()
		for i := 0; ; i++ {
			if i > 10000 {
				t.Fatal("no write refused")
			}
			// A fresh slice each time: the engine holds a written slice
			// until the kernel has taken it.
			chunk := make([]byte, 64<<10)
			fillPattern(chunk, sent)
			_, err := srv.Write(chunk)
			if err != nil {
				var le *sock.WriteLimitError
				if !errors.As(err, &le) || !errors.Is(err, sock.ErrWriteLimit) || le.Limit != limit {
					t.Fatalf("refused with %v, want a *WriteLimitError for limit %d", err, limit)
				}
				// The refusal is judged on the queue at that instant, which
				// the error carries: read later, the queue may already have
				// drained into socket buffers that grew meanwhile.
				if le.Queued > limit || le.Queued+int64(le.Write) <= limit || le.Write != len(chunk) {
					t.Fatalf("refused with %d bytes queued, limit %d, write %d (error says write %d)", le.Queued, limit, len(chunk), le.Write)
				}
				if q := srv.QueuedBytes(); q > limit {
					t.Fatalf("%d bytes queued after the refusal, past the limit %d", q, limit)
				}
				return
			}
			sent += int64(len(chunk))
			if q := srv.QueuedBytes(); q > limit {
				t.Fatalf("%d bytes queued, past the limit %d", q, limit)
			}
		}
	}
	writeUntilRefused()
	t.Logf("refused after %d bytes accepted (%d queued, the rest in the socket buffers)", sent, srv.QueuedBytes())

	// The peer reads all; the queue drains and writes go on.
	got := make([]byte, sent)
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	checkPattern(t, got, 0)
	before := sent
	writeUntilRefused()
	srv.Close()
	rest, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(rest)) != sent-before {
		t.Fatalf("read %d bytes after the drain, %d were accepted", len(rest), sent-before)
	}
	checkPattern(t, rest, before)
}

func fillPattern(p []byte, off int64) {
	for i := range p {
		p[i] = byte((off + int64(i)) * 31 >> 3)
	}
}

func checkPattern(t *testing.T, p []byte, off int64) {
	t.Helper()
	want := make([]byte, len(p))
	fillPattern(want, off)
	if !bytes.Equal(p, want) {
		t.Fatalf("stream bytes differ from offset %d", off)
	}
}

// TestNeverReadingPeersCannotGrowTheServer: 100 peers that never read,
// each sent as much as the server will queue. Every connection's queue
// stays within its limit, and the process's RSS is logged.
func TestNeverReadingPeersCannotGrowTheServer(t *testing.T) {
	const peers, limit = 100, 256 << 10
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	var over, refused atomic.Int32
	var accepted atomic.Int64
	ln, err := e.Listen("127.0.0.1:0", &funcHandler{
		onOpen: func(c *reactor.Conn) {
			chunk := make([]byte, 16<<10)
			for range 10000 {
				if _, err := c.Write(chunk); err != nil {
					if errors.Is(err, sock.ErrWriteLimit) {
						refused.Add(1)
					}
					break
				}
				accepted.Add(int64(len(chunk)))
				if c.QueuedBytes() > limit {
					over.Add(1)
				}
			}
		},
	}, reactor.ListenOptions{ConnOptions: reactor.ConnOptions{WriteLimit: limit}})
	if err != nil {
		t.Fatal(err)
	}
	rss0 := rssKiB()
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range peers {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for refused.Load() < peers && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if refused.Load() != peers || over.Load() != 0 {
		t.Fatalf("%d of %d connections reached their limit; %d times a queue passed it", refused.Load(), peers, over.Load())
	}
	s := e.Stats()
	t.Logf("%d peers not reading: %d MiB accepted in all, %d buffers in use, RSS %d KiB (%+d KiB since the peers came)",
		peers, accepted.Load()>>20, s.Buffers.InUse, rssKiB(), rssKiB()-rss0)
}

// rssKiB is the process's resident set (Linux; 0 elsewhere).
func rssKiB() int64 {
	if runtime.GOOS != "linux" {
		return 0
	}
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize()) >> 10
}

// flowEcho echoes and stops reading while its write queue is high.
type flowEcho struct {
	highs, lows atomic.Int32
	refused     atomic.Int32
	paused      bool // callbacks only
	reading     bool
}

func (h *flowEcho) OnOpen(c *reactor.Conn) { h.reading = true; c.Read() }

func (h *flowEcho) OnRead(c *reactor.Conn, b *reactor.Buffer, err error) {
	h.reading = false
	if err != nil {
		c.Close()
		return
	}
	if _, err := c.WriteBuffer(b); err != nil {
		h.refused.Add(1)
		c.Abort()
		return
	}
	if !h.paused {
		h.reading = true
		c.Read()
	}
}

func (h *flowEcho) OnWriteQueue(c *reactor.Conn, high bool) {
	h.paused = high
	if high {
		h.highs.Add(1)
		return
	}
	h.lows.Add(1)
	if !h.reading {
		h.reading = true
		c.Read()
	}
}

func (h *flowEcho) OnClose(*reactor.Conn, error) {}

// TestFlowHandlerPausesReadsWhileTheQueueIsHigh: a client that sends
// 16 MiB before it reads anything. The echo stops reading when told its
// queue is high and resumes when told it drained, so the client's sends
// stall in TCP rather than in the server's memory: no write is refused,
// the queue stays within the limit, and every byte comes back.
func TestFlowHandlerPausesReadsWhileTheQueueIsHigh(t *testing.T) {
	const limit, total = 1 << 20, 16 << 20
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	h := &flowEcho{}
	ln, err := e.Listen("127.0.0.1:0", h, reactor.ListenOptions{ConnOptions: reactor.ConnOptions{WriteLimit: limit}})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, ln.Addr().String())
	defer c.Close()
	src := make([]byte, total)
	fillPattern(src, 0)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(src)
		c.CloseWrite()
		werr <- err
	}()
	// Read nothing until the server has paused at least once, or the
	// client's writer has finished.
	deadline := time.Now().Add(10 * time.Second)
	for h.highs.Load() == 0 && len(werr) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, src) {
		t.Fatalf("echo differs (%d bytes back of %d)", len(got), total)
	}
	if h.highs.Load() == 0 || h.lows.Load() != h.highs.Load() || h.refused.Load() != 0 {
		t.Fatalf("%d high, %d low, %d refused writes", h.highs.Load(), h.lows.Load(), h.refused.Load())
	}
	t.Logf("paused %d times", h.highs.Load())
}
