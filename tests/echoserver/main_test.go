package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
)

// TestMain removes the binary the tests build (once, on first use).
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// echoserverBinary builds the binary once for all the tests.
func echoserverBinary(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("Windows cannot deliver SIGINT to another process (os.Process.Signal(os.Interrupt) is unimplemented), which is how these tests stop the server; and under Wine the test has no go command to build it. The engine's shutdown on Windows is covered by sock's TestShutdownClosesEverything")
	}
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "echoserver-test"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "echoserver")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// server is a running echoserver.
type server struct {
	cmd    *exec.Cmd
	lines  *bufio.Scanner
	stderr *bytes.Buffer
	addr   string
}

// startServer starts the binary on a free port with args added and waits
// for its "listening on ADDR" line.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	return startServerFiles(t, nil, args...)
}

// startServerFiles is startServer with files passed to the binary, the
// first as descriptor 3.
func startServerFiles(t *testing.T, files []*os.File, args ...string) *server {
	t.Helper()
	bin := echoserverBinary(t)
	backend := testutil.WithTestBackend(reactor.Config{}).Backend
	args = append([]string{"-addr", "127.0.0.1:0", "-io-threads", "2", "-backend", backend.String()}, args...)
	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = files
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	s.lines = bufio.NewScanner(stdout)
	if !s.lines.Scan() {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no output; stderr: %s", s.stderr.String())
	}
	addr, ok := strings.CutPrefix(s.lines.Text(), "listening on ")
	if !ok {
		t.Fatalf("first line %q, want \"listening on ADDR\"", s.lines.Text())
	}
	s.addr = addr
	return s
}

// stop sends SIGINT, checks that the server exits 0 with its counters
// back to zero, and returns the counters.
func (s *server) stop(t *testing.T) string {
	t.Helper()
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	for s.lines.Scan() {
		rest.WriteString(s.lines.Text() + "\n")
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGINT: %v; stderr: %s", err, s.stderr.String())
	}
	for _, want := range []string{"connections open:     0", "buffers in use:       0", "engine fds:           0"} {
		if !strings.Contains(rest.String(), want) {
			t.Errorf("counters after shutdown lack %q:\n%s", want, rest.String())
		}
	}
	return rest.String()
}

// TestEchoServerBinary builds the binary, starts it on a free port, echoes
// through it, stops it with SIGINT and checks its exit and its counters.
func TestEchoServerBinary(t *testing.T) {
	s := startServer(t)
	backend := testutil.WithTestBackend(reactor.Config{}).Backend
	echoThrough(t, "tcp", s.addr)

	counters := s.stop(t)
	if backend != reactor.BackendAuto && !strings.Contains(counters, "backend:              "+backend.String()) {
		t.Errorf("counters do not name backend %v:\n%s", backend, counters)
	}
	if !strings.Contains(counters, "connections total:    1") {
		t.Errorf("counters lack one connection:\n%s", counters)
	}
}

// TestEchoServerUDP: with -udp the binary also echoes datagrams on the UDP
// port of the listener's number, and counts them.
func TestEchoServerUDP(t *testing.T) {
	s := startServer(t, "-udp")
	c, err := net.Dial("udp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2000)
	for i := range 10 {
		msg := bytes.Repeat([]byte{byte('a' + i)}, 100*i+1)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("datagram %d: %d bytes back, %v", i, n, err)
		}
	}
	if counters := s.stop(t); !strings.Contains(counters, "datagrams:            10 in, 10 out") {
		t.Errorf("counters lack the 10 datagrams:\n%s", counters)
	}
}

// echoThrough sends 50,000 bytes to the server at addr on a connection
// of its own and checks that all come back.
func echoThrough(t *testing.T, network, addr string) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := bytes.Repeat([]byte("echo "), 10000)
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through the binary over %s: %v", network, err)
	}
}

// TestEchoServerUnix: -addr unix:PATH serves on a Unix-domain socket,
// announces it, and removes its file at exit.
func TestEchoServerUnix(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the engine offers no Unix-domain sockets on Windows: Wine 8 has no AF_UNIX to test them against (docs/unix.md)")
	}
	path := filepath.Join(t.TempDir(), "echo.sock")
	s := startServer(t, "-addr", "unix:"+path)
	if s.addr != "unix:"+path {
		t.Fatalf("announced %q, want unix:%s", s.addr, path)
	}
	echoThrough(t, "unix", path)
	if counters := s.stop(t); !strings.Contains(counters, "connections total:    1") {
		t.Errorf("counters lack one connection:\n%s", counters)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the socket file after exit: %v, want it removed", err)
	}
}

// TestEchoServerHandOff: a restart that refuses no connection. Server A
// serves a listening socket it inherited (-listen-fd); server B starts on
// the same socket; A is stopped with -drain, so it stops accepting and
// exits once its connections have closed. Clients connecting and echoing
// all the while never fail, and B serves what comes after.
func TestEchoServerHandOff(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("ListenFile is Linux only: a Windows socket crosses processes through WSADuplicateSocket, not an inherited file (docs/handoff.md)")
	}
	// Plain TCP: Go's net listens with MPTCP by default where the kernel
	// has it, and an MPTCP socket's accept ignores the receive timeout
	// that bounds the one race the engine cannot close (docs/handoff.md).
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	tl, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := tl.Addr().String()
	// The file of a net listener: passing it to a child (ExtraFiles)
	// puts the socket in blocking mode, which the servers must survive.
	f, err := tl.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	tl.Close()
	defer f.Close()
	a := startServerFiles(t, []*os.File{f}, "-listen-fd", "3", "-drain", "10s")
	if a.addr != addr {
		t.Fatalf("server A announced %s, want the inherited socket's %s", a.addr, addr)
	}

	var echoed, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for n := 0; n < 5000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := echoShort(addr, byte(i+n)); err != nil {
					failed.Add(1)
					t.Errorf("client %d, connection %d across the hand-off: %v", i, n, err)
					return
				}
				echoed.Add(1)
			}
		})
	}
	waitEchoed := func(n int64, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for echoed.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections echoed, waiting for %d %s", echoed.Load(), n, what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitEchoed(100, "through server A")
	b := startServerFiles(t, []*os.File{f}, "-listen-fd", "3")
	countersA := a.stop(t) // drains: returns once A's connections have closed
	waitEchoed(echoed.Load()+200, "after A stopped")
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d clients failed across the hand-off", failed.Load())
	}
	countersB := b.stop(t)
	for name, c := range map[string]string{"A": countersA, "B": countersB} {
		if strings.Contains(c, "connections total:    0\n") {
			t.Errorf("server %s accepted no connection:\n%s", name, c)
		}
	}
}

// echoShort connects to addr, echoes 64 bytes of b and closes.
func echoShort(addr string, b byte) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := bytes.Repeat([]byte{b}, 64)
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("the echo differs")
	}
	return nil
}

// writePair writes a certificate for pub, self-signed by signer with alg
// (0: Go's default), valid from notBefore to notAfter, and key as the
// private key file. It fails t unless only x509.CreateCertificate refused
// alg, which it returns (crypto/x509 may one day refuse SHA-1).
func writePair(t *testing.T, pub crypto.PublicKey, signer crypto.Signer, key crypto.PrivateKey, notBefore, notAfter time.Time, alg x509.SignatureAlgorithm) (certFile, keyFile string, err error) {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:       serial,
		Subject:            pkix.Name{CommonName: "echoserver test"},
		NotBefore:          notBefore,
		NotAfter:           notAfter,
		KeyUsage:           x509.KeyUsageDigitalSignature,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:        []net.IP{net.IPv4(127, 0, 0, 1)},
		SignatureAlgorithm: alg,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		if alg != 0 {
			return "", "", err
		}
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := testutil.TempDir(t)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, nil
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestEchoServerTLS: with a good pair the binary serves echo over TLS to
// Go's crypto/tls client, which verifies its certificate; a client that
// never starts its handshake is closed after -handshake-timeout.
func TestEchoServerTLS(t *testing.T) {
	certPEM, keyPEM, _ := testutil.SelfSigned(t, "127.0.0.1")
	dir := testutil.TempDir(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	const handshakeTimeout = 500 * time.Millisecond
	s := startServer(t, "-tls-cert", certFile, "-tls-key", keyFile, "-handshake-timeout", handshakeTimeout.String())

	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.addr,
			&tls.Config{RootCAs: testutil.CertPool(t, certPEM), MinVersion: v, MaxVersion: v})
		if err != nil {
			t.Fatalf("%s: TLS dial: %v; server stderr: %s", tls.VersionName(v), err, s.stderr.String())
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if got := c.ConnectionState().Version; got != v {
			t.Errorf("negotiated %s, want %s", tls.VersionName(got), tls.VersionName(v))
		}
		msg := make([]byte, 1<<20)
		rand.Read(msg)
		errc := make(chan error, 1)
		go func() { _, err := c.Write(msg); errc <- err }()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%s: echo through the binary: %v", tls.VersionName(v), err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		c.Close()
	}

	// A client that connects and says nothing.
	raw, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	start := time.Now()
	raw.SetReadDeadline(start.Add(handshakeTimeout + 10*time.Second))
	n, err := raw.Read(make([]byte, 1))
	elapsed := time.Since(start)
	if n != 0 || err != io.EOF {
		t.Errorf("silent client read %d bytes, %v; want EOF", n, err)
	}
	if elapsed < handshakeTimeout-50*time.Millisecond || elapsed > handshakeTimeout+5*time.Second {
		t.Errorf("silent client closed after %v, want about the %v handshake timeout", elapsed, handshakeTimeout)
	}

	counters := s.stop(t)
	if !strings.Contains(counters, "tls handshakes:       2 (failed 1)") {
		t.Errorf("counters should show 2 handshakes and 1 failure (the timeout):\n%s", counters)
	}
}

// TestEchoServerRefusesBadPairs: a pair that cannot work stops the binary
// at start, exit status 1, with the reason on stderr.
func TestEchoServerRefusesBadPairs(t *testing.T) {
	echoserverBinary(t)
	now := time.Now()
	good, other := newKey(t), newKey(t)
	pair := func(key crypto.PrivateKey, notBefore, notAfter time.Time) (certFile, keyFile string) {
		certFile, keyFile, _ = writePair(t, &good.PublicKey, good, key, notBefore, notAfter, 0)
		return certFile, keyFile
	}
	expiredCert, expiredKey := pair(good, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	futureCert, futureKey := pair(good, now.Add(24*time.Hour), now.Add(48*time.Hour))
	// The certificate is for good's key; the key file holds other.
	mismatchCert, mismatchKey := pair(other, now.Add(-time.Hour), now.Add(24*time.Hour))
	sha1Cert, sha1Key, sha1Err := writePair(t, &good.PublicKey, good, good, now.Add(-time.Hour), now.Add(24*time.Hour), x509.ECDSAWithSHA1)
	for _, tc := range []struct {
		name string
		args []string
		want []string // on stderr
		skip error    // the pair could not be made
	}{
		{"expired", []string{"-tls-cert", expiredCert, "-tls-key", expiredKey}, []string{"expired at", expiredCert}, nil},
		{"not yet valid", []string{"-tls-cert", futureCert, "-tls-key", futureKey}, []string{"not valid before", futureCert}, nil},
		{"signed with SHA-1", []string{"-tls-cert", sha1Cert, "-tls-key", sha1Key}, []string{"signed with ECDSA-SHA1", sha1Cert}, sha1Err},
		{"key does not match", []string{"-tls-cert", mismatchCert, "-tls-key", mismatchKey}, []string{"private key does not match", mismatchCert, mismatchKey}, nil},
		{"no such file", []string{"-tls-cert", mismatchCert + ".missing", "-tls-key", mismatchKey}, []string{"no such file", mismatchCert + ".missing"}, nil},
		{"cert without key", []string{"-tls-cert", expiredCert}, []string{"-tls-cert and -tls-key go together"}, nil},
		{"key without cert", []string{"-tls-key", expiredKey}, []string{"-tls-cert and -tls-key go together"}, nil},
		{"handshake timeout without TLS", []string{"-handshake-timeout", "1s"}, []string{"-handshake-timeout needs TLS"}, nil},
		{"negative read timeout", []string{"-read-timeout", "-1s"}, []string{"-read-timeout must be ≥ 0"}, nil},
		{"negative write timeout", []string{"-write-timeout", "-1s"}, []string{"-write-timeout must be ≥ 0"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != nil {
				t.Skipf("crypto/x509 cannot make the certificate: %v", tc.skip)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binPath, append([]string{"-addr", "127.0.0.1:0"}, tc.args...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() <= 0 {
				t.Fatalf("exit: %v, want a non-zero status; stdout: %s; stderr: %s", err, stdout.String(), stderr.String())
			}
			if strings.Contains(stdout.String(), "listening on") {
				t.Errorf("it listened before refusing: %s", stdout.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr.String())
				}
			}
			t.Logf("refused: %s", strings.TrimSpace(stderr.String()))
		})
	}
}

// TestEchoServerReadTimeout: -read-timeout closes a client that stops
// sending about that long after its last bytes arrived; the client reads
// the end of the stream (a graceful close, not a reset).
func TestEchoServerReadTimeout(t *testing.T) {
	const timeout = 400 * time.Millisecond
	s := startServer(t, "-read-timeout", timeout.String())
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout + 10*time.Second))
	// Bytes that arrive re-arm the timeout: keep sending for longer than
	// it, the connection stays open.
	buf := make([]byte, 5)
	var last time.Time
	for i := 0; i < 6; i++ {
		if _, err := c.Write([]byte("ping\n")); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		last = time.Now()
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping\n" {
			t.Fatalf("echo %d: %q, %v", i, buf, err)
		}
		time.Sleep(timeout / 4)
	}
	// Now idle: the server closes.
	n, err := c.Read(buf)
	elapsed := time.Since(last)
	if n != 0 || err != io.EOF {
		t.Fatalf("idle client read %d bytes, %v; want EOF", n, err)
	}
	if elapsed < timeout-50*time.Millisecond || elapsed > timeout+5*time.Second {
		t.Errorf("closed %v after the last bytes were sent, want about %v", elapsed, timeout)
	}
	t.Logf("closed %v after the last bytes were sent (read timeout %v)", elapsed.Round(time.Millisecond), timeout)
	counters := s.stop(t)
	if !strings.Contains(counters, "read timeouts:        1\n") {
		t.Errorf("counters should show one read timeout:\n%s", counters)
	}
}
