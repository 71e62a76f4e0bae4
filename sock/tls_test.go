package sock_test

import (
	"bytes"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
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

// pumpEcho writes total random bytes in writes of random size (up to
// 64 KiB) and reads them back, comparing every byte. The reader replays
// the writer's sizes from a generator with the same seed.
func pumpEcho(c io.ReadWriter, total int, seed uint64) error {
	src := make([]byte, 256<<10)
	fill := rand.New(rand.NewPCG(seed, 1))
	for i := range src {
		src[i] = byte(fill.Uint32())
	}
	// chunks yields the offset and size of each write, the same sequence
	// for the writer and the reader.
	chunks := func() func() (int, int) {
		rng := rand.New(rand.NewPCG(seed, 7))
		done := 0
		return func() (int, int) {
			n := min(1+rng.IntN(64<<10), total-done)
			off := done % (len(src) - n)
			done += n
			return off, n
		}
	}
	errc := make(chan error, 1)
	go func() {
		next := chunks()
		for sent := 0; sent < total; {
			off, n := next()
			if _, err := c.Write(src[off : off+n]); err != nil {
				errc <- err
				return
			}
			sent += n
		}
		errc <- nil
	}()
	next := chunks()
	got := make([]byte, 64<<10)
	for recv := 0; recv < total; {
		off, n := next()
		want := src[off : off+n]
		if _, err := io.ReadFull(c, got[:n]); err != nil {
			return fmt.Errorf("after %d bytes: %w", recv, err)
		}
		if !bytes.Equal(got[:n], want) {
			return fmt.Errorf("bytes %d..%d differ", recv, recv+n)
		}
		recv += n
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
	testutil.Serve(t, ln, func(c net.Conn) {
		defer c.Close()
		io.Copy(c, c)
	})
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

// TestTLSResumptionALPNAndSNI: what crypto/tls provides passes through
// the filter. The engine's server sees the client's server name and
// agrees ALPN; a second connection with the same session cache resumes
// (TLS 1.2 tickets and TLS 1.3 PSK).
func TestTLSResumptionALPNAndSNI(t *testing.T) {
	p := newTLSPair(t)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			srv := p.server.Clone()
			srv.NextProtos = []string{"h2", "echo/1"}
			seen := make(chan tls.ConnectionState, 2)
			e := testutil.Engine(t, reactor.Config{IOThreads: 2})
			ln, err := e.Listen("127.0.0.1:0", &funcHandler{
				onOpen: func(c *reactor.Conn) {
					st, ok := sock.ConnectionState(c)
					if !ok {
						t.Error("no TLS state at OnOpen")
					}
					seen <- st
					c.Read()
				},
				onRead: func(c *reactor.Conn, b *reactor.Buffer, err error) {
					if err != nil {
						c.Close()
						return
					}
					c.WriteBuffer(b)
					c.Read()
				},
			}, reactor.ListenOptions{ConnOptions: reactor.ConnOptions{TLS: srv}})
			if err != nil {
				t.Fatal(err)
			}
			cfg := p.client.Clone()
			cfg.MinVersion, cfg.MaxVersion = v, v
			cfg.ServerName = "localhost"
			cfg.NextProtos = []string{"echo/1"}
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			for i := range 2 {
				c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				// A round trip: TLS 1.3 tickets arrive after the handshake.
				if err := pumpEcho(c, 1000, uint64(i)); err != nil {
					t.Fatal(err)
				}
				cs := c.ConnectionState()
				c.Close()
				st := wait(t, seen, "OnOpen")
				if st.ServerName != "localhost" || st.NegotiatedProtocol != "echo/1" || cs.NegotiatedProtocol != "echo/1" {
					t.Fatalf("server saw name %q, protocol %q; client protocol %q", st.ServerName, st.NegotiatedProtocol, cs.NegotiatedProtocol)
				}
				if resumed := cs.DidResume && st.DidResume; resumed != (i == 1) {
					t.Fatalf("connection %d: resumed %v (client %v, server %v)", i, resumed, cs.DidResume, st.DidResume)
				}
			}
		})
	}
}

// TestListenRefusesACertificateThatCannotWork: Listen with TLS checks the
// certificate at once and names the reason (here an expired one), rather
// than failing each handshake later.
func TestListenRefusesACertificateThatCannotWork(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	_, _, cert := testutil.SelfSigned(t, "127.0.0.1")
	leaf := *cert.Leaf
	leaf.NotAfter = time.Now().Add(-time.Hour)
	// An expired copy, signed again by its own key.
	der, err := x509.CreateCertificate(crand.Reader, &leaf, &leaf, leaf.PublicKey, cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	expired := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: cert.PrivateKey}
	_, err = e.Listen("127.0.0.1:0", &funcHandler{}, reactor.ListenOptions{ConnOptions: reactor.ConnOptions{
		TLS: &tls.Config{Certificates: []tls.Certificate{expired}},
	}})
	var ce *sock.CertificateError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("Listen with an expired certificate: %v, want a *CertificateError naming the expiry", err)
	}
	if _, err := e.Dial("127.0.0.1:1", &funcHandler{}, reactor.DialOptions{ConnOptions: reactor.ConnOptions{
		TLS: &tls.Config{Certificates: []tls.Certificate{expired}, ServerName: "x"},
	}}); !errors.As(err, &ce) {
		t.Fatalf("Dial with an expired client certificate: %v, want a *CertificateError", err)
	}
	if s := e.Stats(); s.FDs != 0 {
		t.Fatalf("%d descriptors after refused Listen and Dial", s.FDs)
	}
}
