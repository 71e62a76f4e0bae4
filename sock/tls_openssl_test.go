package sock_test

// The engine's TLS against OpenSSL's command-line peers, a TLS stack
// written neither here nor in Go: `openssl s_client` against the
// engine's server, and the engine's client against `openssl s_server`,
// TLS 1.2 and 1.3, many MiB in each direction compared byte for byte.
//
// How the openssl programs are driven (OpenSSL 3.0):
//
//   - s_client -quiet relays its stdin to the server and what the server
//     sends to its stdout, and prints nothing else on stdout (the
//     verification lines go to stderr). -quiet implies -ign_eof: the end
//     of its stdin does not end the connection, so the test writes the
//     payload, closes stdin, reads the echo, and then has the engine close
//     the connection; s_client exits when it reads the close_notify.
//   - s_server without -www relays the same way, one connection at a
//     time; -naccept 1 makes it exit after the first. With -quiet nothing
//     but the client's bytes reaches its stdout (not even the "ACCEPT"
//     line it prints otherwise), and stdin lines are not taken as
//     commands (without -quiet a chunk starting with "Q", "r", ... is a
//     command). The end of its stdin ends the connection: it sends
//     close_notify and closes. So the test keeps its stdin open until
//     everything the engine's client wrote has come out of its stdout.
//     It prints no readiness line under -quiet, so the engine's client
//     dials until the connect is not refused: the first connect that
//     succeeds is the connection under test.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/seq"
	"github.com/ioreactor/reactor/sock"
)

// osslTimeout bounds one openssl run: the process is killed when it
// passes, which ends every wait of the test.
const osslTimeout = 3 * time.Minute

// osslPath returns the openssl binary, or skips the test with the reason.
func osslPath(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("openssl here is a Linux binary, which Wine cannot start from a Windows test process")
	}
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Skipf("no openssl command to test against (%v); .ci/run installs it", err)
	}
	return p
}

// osslPayload is how many bytes go each way.
func osslPayload() int {
	if testing.Short() {
		return 8 << 20
	}
	return 64 << 20
}

// osslVersions are the protocol versions tested, with the openssl flag
// that pins each.
var osslVersions = []struct {
	v    uint16
	flag string
}{
	{tls.VersionTLS12, "-tls1_2"},
	{tls.VersionTLS13, "-tls1_3"},
}

// osslFiles writes the pair's certificate and key as PEM files.
func osslFiles(t *testing.T, p tlsPair) (certFile, keyFile string) {
	t.Helper()
	dir := testutil.TempDir(t)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, p.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, p.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// osslSource is an openssl process's stdin: total bytes of a seeded
// ChaCha8 stream, then, once hold is closed (at once if nil), the end of
// input. It gives up waiting when ctx ends, so the copying goroutine
// exec runs for it always returns.
type osslSource struct {
	ctx  context.Context
	rng  *rand.ChaCha8
	left int
	hold <-chan struct{}
}

func newOsslSource(ctx context.Context, seed byte, total int, hold <-chan struct{}) *osslSource {
	return &osslSource{ctx: ctx, rng: rand.NewChaCha8([32]byte{seed}), left: total, hold: hold}
}

func (s *osslSource) Read(p []byte) (int, error) {
	if s.left == 0 {
		if s.hold != nil {
			select {
			case <-s.hold:
			case <-s.ctx.Done():
			}
		}
		return 0, io.EOF
	}
	n := min(len(p), s.left)
	s.rng.Read(p[:n])
	s.left -= n
	return n, nil
}

// osslSink is an openssl process's stdout: it compares every byte with
// the seeded ChaCha8 stream osslSource makes and closes full when total
// bytes have matched. A fault is recorded, not returned, so the process
// is never disturbed by a failing pipe.
type osslSink struct {
	mu    sync.Mutex
	rng   *rand.ChaCha8
	total int
	n     int
	err   error
	want  []byte
	full  chan struct{}
}

func newOsslSink(seed byte, total int) *osslSink {
	return &osslSink{rng: rand.NewChaCha8([32]byte{seed}), total: total, full: make(chan struct{})}
}

func (s *osslSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return len(p), nil
	}
	if s.n+len(p) > s.total {
		s.err = fmt.Errorf("%d bytes more than the %d sent", s.n+len(p)-s.total, s.total)
		return len(p), nil
	}
	if cap(s.want) < len(p) {
		s.want = make([]byte, len(p))
	}
	want := s.want[:len(p)]
	s.rng.Read(want)
	if !bytes.Equal(p, want) {
		i := 0
		for p[i] == want[i] {
			i++
		}
		s.err = fmt.Errorf("byte %d differs: got %#02x, want %#02x", s.n+i, p[i], want[i])
		return len(p), nil
	}
	s.n += len(p)
	if s.n == s.total {
		close(s.full)
	}
	return len(p), nil
}

func (s *osslSink) result() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.err
}

// osslProc is a running openssl process, killed when ctx ends.
type osslProc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's result, set before exited closes
}

// lockedBuffer is a stderr that may be read while the process runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startOssl starts openssl with args, stdin and stdout; t's cleanup kills
// it if it still runs and reaps it.
func startOssl(t *testing.T, ctx context.Context, bin string, stdin io.Reader, stdout io.Writer, args ...string) *osslProc {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin, cmd.Stdout = stdin, stdout
	p := &osslProc{cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	// Once the process is gone, its pipes' copies get this long to finish.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting openssl %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("started openssl %s", strings.Join(args, " "))
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// wait waits for the process to exit, killing it after d.
func (p *osslProc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("openssl did not exit within %v; killed. stderr:\n%s", d, p.stderr.String())
	}
	return p.err
}

// osslServerConn records what the engine's server saw of a connection.
type osslServerConn struct {
	c     *reactor.Conn
	state tls.ConnectionState
	ok    bool
}

// osslEcho is the echo service, telling the test of each connection it
// opens and of each close.
type osslEcho struct {
	echo.Handler
	opened chan osslServerConn
	closed chan error
}

func (h *osslEcho) OnOpen(c *reactor.Conn) {
	st, ok := sock.ConnectionState(c)
	select {
	case h.opened <- osslServerConn{c: c, state: st, ok: ok}:
	default:
	}
	h.Handler.OnOpen(c)
}

func (h *osslEcho) OnClose(c *reactor.Conn, err error) {
	select {
	case h.closed <- err:
	default:
	}
}

// TestTLSServerAgainstOpensslClient: `openssl s_client` against the
// engine's TLS echo server, TLS 1.2 and 1.3. The client verifies the
// server's certificate (-CAfile, -verify_hostname, -verify_return_error)
// and sends its name (-servername); it relays a random payload from its
// stdin, and its stdout must give back exactly those bytes. The engine
// then closes the connection, and s_client must exit cleanly on the
// close_notify.
func TestTLSServerAgainstOpensslClient(t *testing.T) {
	bin := osslPath(t)
	total := osslPayload()
	p := newTLSPair(t)
	certFile, _ := osslFiles(t, p)
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	h := &osslEcho{Handler: echo.Handler{Reads: 1}, opened: make(chan osslServerConn, 4), closed: make(chan error, 4)}
	ln, err := e.Listen("127.0.0.1:0", h, reactor.ListenOptions{ConnOptions: reactor.ConnOptions{TLS: p.server}})
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	for i, ver := range osslVersions {
		t.Run(tls.VersionName(ver.v), func(t *testing.T) {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), osslTimeout)
			defer cancel()
			seed := byte(10 + i)
			sink := newOsslSink(seed, total)
			proc := startOssl(t, ctx, bin, newOsslSource(ctx, seed, total, nil), sink,
				"s_client", "-connect", addr, "-quiet", ver.flag,
				"-servername", "localhost", "-verify_hostname", "localhost",
				"-CAfile", certFile, "-verify_return_error")

			var srv osslServerConn
			select {
			case srv = <-h.opened:
			case <-proc.exited:
				t.Fatalf("openssl s_client exited before the engine opened the connection: %v; stderr:\n%s", proc.err, proc.stderr.String())
			case <-ctx.Done():
				t.Fatalf("no connection within %v; stderr:\n%s", osslTimeout, proc.stderr.String())
			}
			if !srv.ok || srv.state.Version != ver.v {
				t.Errorf("engine's server negotiated %s (state known: %v), want %s", tls.VersionName(srv.state.Version), srv.ok, tls.VersionName(ver.v))
			}
			if srv.state.ServerName != "localhost" {
				t.Errorf("engine's server saw server name %q, want localhost (-servername)", srv.state.ServerName)
			}

			select {
			case <-sink.full:
			case <-proc.exited:
			case <-ctx.Done():
			}
			n, err := sink.result()
			if err != nil || n != total {
				srv.c.Abort()
				proc.wait(t, 10*time.Second)
				t.Fatalf("s_client's stdout gave %d of %d bytes back (err %v); s_client: %v; stderr:\n%s", n, total, err, proc.err, proc.stderr.String())
			}
			echoed := time.Since(start)

			// The engine closes: s_client reads the close_notify and exits.
			srv.c.Close()
			if err := proc.wait(t, 30*time.Second); err != nil {
				t.Errorf("s_client after the engine closed: %v; stderr:\n%s", err, proc.stderr.String())
			} else if msg := proc.stderr.String(); strings.Contains(msg, "unexpected eof") || strings.Contains(msg, ":error:") {
				// A close without close_notify ends s_client with status 1
				// and "unexpected eof while reading", a reset with status
				// 104; its stderr is checked too, in case its status ever
				// stops telling.
				t.Errorf("s_client reports an error after the engine closed:\n%s", msg)
			}
			select {
			case err := <-h.closed:
				if err != nil {
					t.Errorf("engine's server connection closed with %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("engine's server connection did not close")
			}
			if n, err := sink.result(); err != nil || n != total {
				t.Errorf("after exit, s_client's stdout gave %d of %d bytes (err %v)", n, total, err)
			}
			t.Logf("%d MiB echoed in %v (%.0f MiB/s), %v with the close", total>>20, echoed.Round(time.Millisecond),
				float64(total>>20)/echoed.Seconds(), time.Since(start).Round(time.Millisecond))
		})
	}
	if s := e.Stats(); s.TLSHandshakes != int64(len(osslVersions)) || s.TLSFailures != 0 {
		t.Errorf("engine counted %d handshakes and %d failures, want %d and 0", s.TLSHandshakes, s.TLSFailures, len(osslVersions))
	}
}

// osslClient is the engine's client against s_server: it writes total
// bytes of one ChaCha8 stream (its own send window bounded by OnWrite
// completions), checks that what it reads is total bytes of another,
// followed by the end of the stream, and then closes.
type osslClient struct {
	total int
	out   *rand.ChaCha8 // what it writes
	in    *rand.ChaCha8 // what it should read

	// Touched only in the connection's callbacks, which never overlap;
	// the test reads them after closed.
	sent, inflight, recv int
	want                 []byte
	sawEOF, opened       bool
	state                tls.ConnectionState

	open   chan struct{} // closed by OnOpen
	done   chan struct{} // closed by finish
	closed chan struct{} // closed by OnClose, the last callback
	once   sync.Once
	err    error
}

// osslWindow bounds the bytes written and not yet taken by the kernel.
const osslWindow = 1 << 20

func newOsslClient(total int, outSeed, inSeed byte) *osslClient {
	return &osslClient{
		total:  total,
		out:    rand.NewChaCha8([32]byte{outSeed}),
		in:     rand.NewChaCha8([32]byte{inSeed}),
		open:   make(chan struct{}),
		done:   make(chan struct{}),
		closed: make(chan struct{}),
	}
}

func (s *osslClient) finish(err error) {
	s.once.Do(func() { s.err = err; close(s.done) })
}

func (s *osslClient) fail(c *reactor.Conn, err error) {
	s.finish(err)
	c.Abort()
}

func (s *osslClient) OnOpen(c *reactor.Conn) {
	s.opened = true
	s.state, _ = sock.ConnectionState(c)
	close(s.open)
	if err := c.Read(); err != nil {
		s.fail(c, err)
		return
	}
	s.pump(c)
}

func (s *osslClient) pump(c *reactor.Conn) {
	for s.sent < s.total && s.inflight < osslWindow {
		b := make([]byte, min(64<<10, s.total-s.sent))
		s.out.Read(b)
		if _, err := c.Write(b); err != nil {
			s.fail(c, fmt.Errorf("write after %d bytes: %w", s.sent, err))
			return
		}
		s.sent += len(b)
		s.inflight += len(b)
	}
}

func (s *osslClient) OnWrite(c *reactor.Conn, _ seq.Number, n int, err error) {
	if err != nil {
		s.fail(c, fmt.Errorf("write completion: %w", err))
		return
	}
	s.inflight -= n
	s.pump(c)
}

func (s *osslClient) OnRead(c *reactor.Conn, b *reactor.Buffer, err error) {
	if err == io.EOF {
		if s.recv != s.total {
			s.fail(c, fmt.Errorf("end of stream after %d of %d bytes", s.recv, s.total))
			return
		}
		s.sawEOF = true
		c.Close()
		return
	}
	if err != nil {
		s.fail(c, fmt.Errorf("read after %d bytes: %w", s.recv, err))
		return
	}
	defer b.Release()
	for x := b; x != nil; x = x.Next() {
		p := x.Bytes()
		if s.recv+len(p) > s.total {
			s.fail(c, fmt.Errorf("%d bytes more than the %d s_server sent", s.recv+len(p)-s.total, s.total))
			return
		}
		if cap(s.want) < len(p) {
			s.want = make([]byte, len(p))
		}
		want := s.want[:len(p)]
		s.in.Read(want)
		if !bytes.Equal(p, want) {
			s.fail(c, fmt.Errorf("bytes %d..%d differ from what s_server was given", s.recv, s.recv+len(p)))
			return
		}
		s.recv += len(p)
	}
	if err := c.Read(); err != nil {
		s.fail(c, err)
	}
}

func (s *osslClient) OnClose(c *reactor.Conn, err error) {
	defer close(s.closed)
	switch {
	case err != nil:
		s.finish(err)
	case !s.sawEOF:
		s.finish(errors.New("closed before s_server's end of stream"))
	default:
		s.finish(nil)
	}
}

// osslFreePort returns a loopback port that was free a moment ago.
func osslFreePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// TestTLSClientAgainstOpensslServer: the engine's TLS client against
// `openssl s_server`, TLS 1.2 and 1.3, both directions at once: what the
// test feeds s_server's stdin must reach the engine's client byte for
// byte, and what the engine's client writes must come out of s_server's
// stdout byte for byte. Then s_server's stdin ends, s_server sends
// close_notify and closes, and the engine's client must see the end of
// the stream right after the last byte.
func TestTLSClientAgainstOpensslServer(t *testing.T) {
	bin := osslPath(t)
	total := osslPayload()
	p := newTLSPair(t)
	certFile, keyFile := osslFiles(t, p)
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	for i, ver := range osslVersions {
		t.Run(tls.VersionName(ver.v), func(t *testing.T) {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), osslTimeout)
			defer cancel()
			toClient, toServer := byte(20+2*i), byte(21+2*i)
			cfg := p.client.Clone()
			cfg.MinVersion, cfg.MaxVersion = ver.v, ver.v

			var (
				proc    *osslProc
				sink    *osslSink
				release chan struct{}
				client  *osslClient
			)
		attempts:
			for attempt := 1; ; attempt++ {
				port := osslFreePort(t)
				sink = newOsslSink(toServer, total)
				release = make(chan struct{})
				proc = startOssl(t, ctx, bin, newOsslSource(ctx, toClient, total, release), sink,
					"s_server", "-accept", "127.0.0.1:"+port, "-cert", certFile, "-key", keyFile,
					ver.flag, "-quiet", "-naccept", "1")
				// Dial until the connect is not refused (s_server is
				// listening), unless s_server exits first (its bind failed:
				// the port was taken meanwhile; try another).
				for {
					client = newOsslClient(total, toServer, toClient)
					if _, err := e.Dial("127.0.0.1:"+port, client, reactor.DialOptions{Timeout: 10 * time.Second, ConnOptions: reactor.ConnOptions{TLS: cfg}}); err != nil {
						t.Fatalf("Dial: %v", err)
					}
					select {
					case <-client.open:
						break attempts
					case <-client.closed:
					case <-ctx.Done():
						t.Fatalf("s_server not reachable within %v; stderr:\n%s", osslTimeout, proc.stderr.String())
					}
					if !errors.Is(client.err, syscall.ECONNREFUSED) {
						t.Fatalf("dialling s_server: %v; s_server stderr:\n%s", client.err, proc.stderr.String())
					}
					select {
					case <-proc.exited:
						if attempt == 5 {
							t.Fatalf("s_server failed %d times: %v; stderr:\n%s", attempt, proc.err, proc.stderr.String())
						}
						t.Logf("s_server exited before accepting (%v; stderr: %s); trying another port", proc.err, strings.TrimSpace(proc.stderr.String()))
						continue attempts
					case <-time.After(20 * time.Millisecond):
					}
				}
			}
			if client.state.Version != ver.v {
				t.Errorf("engine's client negotiated %s, want %s", tls.VersionName(client.state.Version), tls.VersionName(ver.v))
			}

			// Everything the engine's client wrote came out of s_server:
			// now s_server's stdin may end.
			select {
			case <-sink.full:
			case <-client.done:
			case <-proc.exited:
			case <-ctx.Done():
			}
			close(release)
			select {
			case <-client.closed:
			case <-ctx.Done():
				t.Fatalf("engine's client not closed within %v; s_server stderr:\n%s", osslTimeout, proc.stderr.String())
			}
			done := time.Since(start)
			if err := proc.wait(t, 30*time.Second); err != nil {
				t.Errorf("s_server: %v; stderr:\n%s", err, proc.stderr.String())
			}
			if client.err != nil {
				t.Errorf("engine's client (read %d, wrote %d of %d bytes): %v; s_server stderr:\n%s", client.recv, client.sent, total, client.err, proc.stderr.String())
			}
			if n, err := sink.result(); err != nil || n != total {
				t.Errorf("s_server's stdout gave %d of the %d bytes the engine's client wrote (err %v)", n, total, err)
			}
			t.Logf("%d MiB each way in %v (%.0f MiB/s each way)", total>>20, done.Round(time.Millisecond), float64(total>>20)/done.Seconds())
		})
	}
	if s := e.Stats(); s.TLSHandshakes != int64(len(osslVersions)) || s.TLSFailures != 0 {
		t.Errorf("engine counted %d handshakes and %d failures, want %d and 0", s.TLSHandshakes, s.TLSFailures, len(osslVersions))
	}
}
