package sock_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// tlsPair is a self-signed certificate for the loopback addresses, as a
// server configuration and a client configuration that trusts it.
type tlsPair struct {
	certPEM, keyPEM []byte
	server, client  *tls.Config
}

func newTLSPair(t testing.TB) tlsPair {
	t.Helper()
	certPEM, keyPEM, cert := testutil.SelfSigned(t, "127.0.0.1", "::1", "localhost")
	return tlsPair{
		certPEM: certPEM,
		keyPEM:  keyPEM,
		server:  &tls.Config{Certificates: []tls.Certificate{cert}},
		client:  &tls.Config{RootCAs: testutil.CertPool(t, certPEM), ServerName: "127.0.0.1"},
	}
}

// listenTLSEcho starts a TLS echo listener.
func listenTLSEcho(t *testing.T, cfg reactor.Config, o reactor.ListenOptions) (*reactor.Engine, string) {
	t.Helper()
	e := testutil.Engine(t, cfg)
	ln, err := e.Listen("127.0.0.1:0", &echo.Handler{Reads: 1}, o)
	if err != nil {
		t.Fatal(err)
	}
	return e, ln.Addr().String()
}

// pumpEcho writes total random bytes in random-sized writes and reads
// them back, comparing every byte.
func pumpEcho(c io.ReadWriter, total int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 7))
	src := make([]byte, 256<<10)
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	errc := make(chan error, 1)
	go func() {
		sent := 0
		for sent < total {
			n := min(1+rng.IntN(64<<10), total-sent)
			off := sent % (len(src) - n)
			if _, err := c.Write(src[off : off+n]); err != nil {
				errc <- err
				return
			}
			sent += n
		}
		errc <- nil
	}()
	// The reader recomputes what the writer sent: the same generator.
	check := rand.New(rand.NewPCG(seed, 7))
	for i := range src {
		_ = check.Uint32()
		_ = i
	}
	got := make([]byte, 64<<10)
	want := make([]byte, 0, 64<<10)
	var pending []byte
	recv := 0
	sentCheck := 0
	for recv < total {
		if len(pending) == 0 {
			n := min(1+check.IntN(64<<10), total-sentCheck)
			off := sentCheck % (len(src) - n)
			pending = append(want[:0], src[off:off+n]...)
			sentCheck += n
		}
		k := min(len(got), len(pending))
		if _, err := io.ReadFull(c, got[:k]); err != nil {
			return fmt.Errorf("after %d bytes: %w", recv, err)
		}
		if !bytes.Equal(got[:k], pending[:k]) {
			return fmt.Errorf("bytes %d..%d differ", recv, recv+k)
		}
		pending = pending[k:]
		recv += k
	}
	return <-errc
}

// TestTLSEchoWithGoClient: Go's crypto/tls client against the engine's
// TLS server, TLS 1.2 and 1.3, many MiB echoed and compared.
func TestTLSEchoWithGoClient(t *testing.T) {
	total := 64 << 20
	if testing.Short() {
		total = 8 << 20
	}
	p := newTLSPair(t)
	e, addr := listenTLSEcho(t, reactor.Config{IOThreads: 2}, reactor.ListenOptions{ConnOptions: reactor.ConnOptions{TLS: p.server}})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			cfg := p.client.Clone()
			cfg.MinVersion, cfg.MaxVersion = v, v
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.ConnectionState().Version; got != v {
				t.Fatalf("negotiated %s", tls.VersionName(got))
			}
			if err := pumpEcho(c, total, uint64(v)); err != nil {
				t.Fatal(err)
			}
		})
	}
	if s := e.Stats(); s.TLSHandshakes < 2 || s.TLSFailures != 0 {
		t.Errorf("handshakes %d, failures %d", s.TLSHandshakes, s.TLSFailures)
	}
}

// goTLSEchoServer is an echo server on Go's crypto/tls, a peer not
// written here.
func goTLSEchoServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// streamClient writes total bytes through a reactor connection and
// checks the echo: it writes a pattern in chunks as fast as the write
// limit lets it and compares what comes back.
type streamClient struct {
	total   int
	src     []byte
	mu      sync.Mutex
	recv    int
	sent    int
	err     error
	done    chan struct{}
	once    sync.Once
	version uint16
}

func newStreamClient(total int) *streamClient {
	s := &streamClient{total: total, src: make([]byte, 1<<20), done: make(chan struct{})}
	for i := range s.src {
		s.src[i] = byte(i*7 + i>>8)
	}
	return s
}

func (s *streamClient) finish(err error) {
	s.once.Do(func() { s.err = err; close(s.done) })
}

func (s *streamClient) OnOpen(c *reactor.Conn) {
	if st, ok := sock.ConnectionState(c); ok {
		s.version = st.Version
	}
	c.Read()
	s.pump(c)
}

// pump writes the next chunks; 64 KiB at a time keeps the queue small.
func (s *streamClient) pump(c *reactor.Conn) {
	for s.sent < s.total && s.sent-s.recv < 1<<20 {
		n := min(64<<10, s.total-s.sent)
		off := s.sent % len(s.src)
		n = min(n, len(s.src)-off)
		if _, err := c.Write(s.src[off : off+n]); err != nil {
			s.finish(err)
			return
		}
		s.sent += n
	}
}

func (s *streamClient) OnRead(c *reactor.Conn, b *reactor.Buffer, err error) {
	if err != nil {
		s.finish(fmt.Errorf("read after %d bytes: %w", s.recv, err))
		return
	}
	for x := b; x != nil; x = x.Next() {
		p := x.Bytes()
		for len(p) > 0 {
			off := s.recv % len(s.src)
			k := min(len(p), len(s.src)-off)
			if !bytes.Equal(p[:k], s.src[off:off+k]) {
				b.Release()
				s.finish(fmt.Errorf("bytes %d..%d differ", s.recv, s.recv+k))
				return
			}
			p = p[k:]
			s.recv += k
		}
	}
	b.Release()
	if s.recv == s.total {
		s.finish(nil)
		c.Close()
		return
	}
	s.pump(c)
	c.Read()
}

func (s *streamClient) OnClose(c *reactor.Conn, err error) {
	if err == nil {
		err = errors.New("closed before the stream was echoed")
	}
	s.finish(err)
}

// TestTLSClientAgainstGoServer: the engine's TLS client against Go's
// crypto/tls server, TLS 1.2 and 1.3.
func TestTLSClientAgainstGoServer(t *testing.T) {
	total := 64 << 20
	if testing.Short() {
		total = 8 << 20
	}
	p := newTLSPair(t)
	addr := goTLSEchoServer(t, p.server)
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			cfg := p.client.Clone()
			cfg.MinVersion, cfg.MaxVersion = v, v
			s := newStreamClient(total)
			if _, err := e.Dial(addr, s, reactor.DialOptions{ConnOptions: reactor.ConnOptions{TLS: cfg}}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-s.done:
			case <-time.After(60 * time.Second):
				t.Fatal("stream did not finish in 60 s")
			}
			if s.err != nil {
				t.Fatal(s.err)
			}
			if s.version != v {
				t.Fatalf("negotiated %s", tls.VersionName(s.version))
			}
		})
	}
}

var _ = net.IPv4len
