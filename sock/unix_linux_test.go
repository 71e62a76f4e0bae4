package sock_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// unixSocketPath is a fresh socket path in the test's directory.
func unixSocketPath(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(t.TempDir(), name)
}

// listenUnixEcho starts an echo listener on addr ("unix:...").
func listenUnixEcho(t *testing.T, e *reactor.Engine, addr string, o reactor.ListenOptions) *reactor.Listener {
	t.Helper()
	ln, err := e.Listen(addr, &echo.Handler{Reads: 1}, o)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// echoOverUnix echoes size random bytes on a new Go net connection to
// the Unix-domain socket at path.
func echoOverUnix(path string, size int, seed uint64) error {
	return echoOnceOn("unix", path, size, seed)
}

// TestUnixEcho: a Unix-domain listener echoes every byte of 200
// connections, each one message of a random size up to 1 MiB, on the
// backend CI selects; its file exists while it listens.
func TestUnixEcho(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	path := unixSocketPath(t, "echo.sock")
	ln := listenUnixEcho(t, e, "unix:"+path, reactor.ListenOptions{})
	if ln.Path() != path || ln.Addr().IsValid() {
		t.Fatalf("Path %q, Addr %v: want %q and no IP address", ln.Path(), ln.Addr(), path)
	}
	if st, err := os.Stat(path); err != nil || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket file at %s: %v, %v", path, st, err)
	}
	conns := 200
	if testing.Short() {
		conns = 50
	}
	echoMany(t, "unix", path, conns, 50)
}

// TestUnixDialThroughEngine: the engine dials its own Unix-domain
// listener; 1 MiB written as two buffers comes back whole, and the
// connection reports no IP addresses.
func TestUnixDialThroughEngine(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	addr := "unix:" + unixSocketPath(t, "dial.sock")
	listenUnixEcho(t, e, addr, reactor.ListenOptions{})
	dialEcho(t, e, addr, 1<<20, reactor.DialOptions{})
	addrs := make(chan string, 1)
	c, err := e.Dial(addr, &funcHandler{onOpen: func(c *reactor.Conn) {
		addrs <- fmt.Sprint(c.LocalAddr(), " ", c.RemoteAddr())
	}}, reactor.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if a := wait(t, addrs, "the addresses"); a != "invalid AddrPort invalid AddrPort" {
		t.Fatalf("an open unix connection's LocalAddr and RemoteAddr: %s, want both zero", a)
	}
}

// TestUnixTLS: the filter chain does not care what carries it; TLS runs
// over a Unix-domain socket (the client names the server, as it must
// when the address has no host).
func TestUnixTLS(t *testing.T) {
	tp := newTLSPair(t)
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	addr := "unix:" + unixSocketPath(t, "tls.sock")
	listenUnixEcho(t, e, addr, reactor.ListenOptions{ConnOptions: reactor.ConnOptions{TLS: tp.server}})
	dialEcho(t, e, addr, 300<<10, reactor.DialOptions{ConnOptions: reactor.ConnOptions{TLS: tp.client}})
}

// TestUnixAbstractName: an abstract name works like a path and leaves
// no file anywhere.
func TestUnixAbstractName(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	name := fmt.Sprintf("@reactor-test-%d-%d", os.Getpid(), rand.Uint64())
	ln := listenUnixEcho(t, e, "unix:"+name, reactor.ListenOptions{})
	if ln.Path() != name {
		t.Fatalf("Path %q, want %q", ln.Path(), name)
	}
	if err := echoOverUnix(name, 100<<10, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Listen("unix:"+name, &echo.Handler{}, reactor.ListenOptions{}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("a second listener on abstract name %s: %v, want EADDRINUSE", name, err)
	}
	ln.Close()
	<-ln.Done()
	ln2 := listenUnixEcho(t, e, "unix:"+name, reactor.ListenOptions{})
	if err := echoOverUnix(name, 10, 2); err != nil {
		t.Fatalf("the name taken again after Close: %v", err)
	}
	ln2.Close()
}

// TestUnixCloseRemovesItsFile: Close removes the listener's file before
// it returns, so a new listener can take the path at once, and the old
// listener's teardown leaves the new file alone.
func TestUnixCloseRemovesItsFile(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 2})
	path := unixSocketPath(t, "again.sock")
	var closed []*reactor.Listener
	for i := range 20 {
		ln := listenUnixEcho(t, e, "unix:"+path, reactor.ListenOptions{})
		closed = append(closed, ln)
		if err := echoOverUnix(path, 1000, uint64(i)); err != nil {
			t.Fatal(err)
		}
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("round %d: after Close, %s: %v, want it gone", i, path, err)
		}
		// Not waiting for Done: the next Listen races the teardown.
	}
	ln := listenUnixEcho(t, e, "unix:"+path, reactor.ListenOptions{})
	for _, old := range closed {
		testutil.Await(t, old.Done(), 5*time.Second, "an earlier listener's teardown")
	}
	if err := echoOverUnix(path, 1000, 99); err != nil {
		t.Fatalf("the last listener after 20 closes of its predecessors: %v", err)
	}
	ln.Close()
}

// TestUnixCloseLeavesAReplacedFile: if the path has been given to another
// socket since the listener bound it, Close leaves that file alone.
func TestUnixCloseLeavesAReplacedFile(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	path := unixSocketPath(t, "replaced.sock")
	old := listenUnixEcho(t, e, "unix:"+path, reactor.ListenOptions{})
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	other, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	old.Close()
	<-old.Done()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the other server's socket file after the old listener's Close: %v", err)
	}
}

// TestUnixListenRefusals: a file already at the path (a live server's or
// a stale one) is EADDRINUSE, named by path, and left as it was; bad
// paths and SO_REUSEPORT are refused by name. Nothing stays open.
func TestUnixListenRefusals(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	dir := t.TempDir()
	live := filepath.Join(dir, "live.sock")
	ln := listenUnixEcho(t, e, "unix:"+live, reactor.ListenOptions{})
	defer ln.Close()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("not a socket"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{live, plain} {
		_, err := e.Listen("unix:"+path, &echo.Handler{}, reactor.ListenOptions{})
		if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), path) {
			t.Fatalf("Listen on %s, which exists: %v, want EADDRINUSE naming the path", path, err)
		}
	}
	if b, err := os.ReadFile(plain); err != nil || string(b) != "not a socket" {
		t.Fatalf("the file in the way after the refused Listen: %q, %v", b, err)
	}
	if s := e.Stats(); s.FDs != 1 {
		t.Fatalf("%d descriptors held after the refusals, want 1 (the live listener)", s.FDs)
	}
	if err := echoOverUnix(live, 1000, 5); err != nil {
		t.Fatalf("the live listener after another Listen was refused its path: %v", err)
	}
	_, err := e.Listen("unix:"+filepath.Join(dir, "rp.sock"), &echo.Handler{}, reactor.ListenOptions{ReusePort: true})
	if !errors.Is(err, sock.ErrNotSupported) {
		t.Fatalf("ReusePort on a unix listener: %v, want ErrNotSupported", err)
	}
	_, err = e.Listen("unix:"+filepath.Join(dir, "missing", "x.sock"), &echo.Handler{}, reactor.ListenOptions{})
	if !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Listen in a directory that does not exist: %v, want ENOENT", err)
	}
}

// TestUnixDialFailures: a Unix-domain connect succeeds or fails at once,
// so Dial returns every failure itself: no such file, a file nobody
// listens on, an accept queue that is full. Nothing stays open, and the
// connections that did get in work.
func TestUnixDialFailures(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	dir := t.TempDir()
	for _, tc := range []struct {
		path string
		want error
	}{
		{filepath.Join(dir, "nothing.sock"), syscall.ENOENT},
		{stalePath(t, dir), syscall.ECONNREFUSED},
	} {
		c, err := e.Dial("unix:"+tc.path, &funcHandler{}, reactor.DialOptions{})
		var de *sock.DialError
		if c != nil || !errors.As(err, &de) || !errors.Is(err, tc.want) {
			t.Fatalf("Dial %s: %v, %v; want a *DialError wrapping %v", tc.path, c, err, tc.want)
		}
	}

	// A listener that never accepts, with the smallest queue the kernel
	// allows: some connects get in, then the queue is full.
	full := filepath.Join(dir, "full.sock")
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrUnix{Name: full}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 0); err != nil {
		t.Fatal(err)
	}
	opened := make(chan *reactor.Conn, 16)
	var in []*reactor.Conn
	var ferr error
	for range 16 {
		c, err := e.Dial("unix:"+full, &funcHandler{onOpen: func(c *reactor.Conn) { opened <- c }}, reactor.DialOptions{})
		if err != nil {
			ferr = err
			break
		}
		in = append(in, c)
	}
	if len(in) == 0 || ferr == nil || !errors.Is(ferr, syscall.EAGAIN) || !strings.Contains(ferr.Error(), "accept queue is full") {
		t.Fatalf("%d connects got in, then %v; want at least one, then a full accept queue (EAGAIN)", len(in), ferr)
	}
	for range in {
		testutil.Await(t, opened, 5*time.Second, "OnOpen of a connect the queue took")
	}
	// The kernel's side: accept one and see the bytes the engine sends.
	nfd, _, err := unix.Accept(lfd)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(nfd)
	if _, err := in[0].Write([]byte("queued")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	unix.SetsockoptTimeval(nfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
	if n, err := unix.Read(nfd, buf); err != nil || string(buf[:n]) != "queued" {
		t.Fatalf("the first accepted connect's bytes: %q, %v", buf[:n], err)
	}
	for _, c := range in {
		c.Close()
	}
	if s := e.Stats(); s.DialFailures != 3 {
		t.Fatalf("DialFailures %d, want 3 (no file, nobody listening, queue full)", s.DialFailures)
	}
}

// stalePath leaves a socket file with nothing listening on it, as a
// server that crashed does.
func stalePath(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "stale.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	return path
}

// TestControlReadsPeerCredentials: Control hands out the descriptor of an
// open connection, here to read SO_PEERCRED on an accepted Unix-domain
// connection (the peer is this process), and of a TCP connection, whose
// TCP_NODELAY the engine set; after close it refuses without calling f.
func TestControlReadsPeerCredentials(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	path := unixSocketPath(t, "cred.sock")
	accepted := make(chan *reactor.Conn, 1)
	closed := make(chan struct{})
	ln, err := e.Listen("unix:"+path, &funcHandler{
		onOpen:  func(c *reactor.Conn) { accepted <- c },
		onClose: func(*reactor.Conn, error) { close(closed) },
	}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	client, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c := testutil.Await(t, accepted, 5*time.Second, "the accepted connection")
	var cred *unix.Ucred
	var cerr error
	if err := c.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil || cerr != nil {
		t.Fatalf("Control: %v, SO_PEERCRED: %v", err, cerr)
	}
	if int(cred.Pid) != os.Getpid() || int(cred.Uid) != os.Getuid() {
		t.Fatalf("peer credentials pid %d uid %d, want this process's %d and %d", cred.Pid, cred.Uid, os.Getpid(), os.Getuid())
	}
	var lnType int
	if err := ln.Control(func(fd uintptr) { lnType, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE) }); err != nil || lnType != unix.SOCK_STREAM {
		t.Fatalf("Listener.Control: %v, SO_TYPE %d", err, lnType)
	}
	c.Close()
	<-closed
	called := false
	if err := c.Control(func(uintptr) { called = true }); !errors.Is(err, sock.ErrClosed) || called {
		t.Fatalf("Control after close: %v (f called: %v), want ErrClosed without a call", err, called)
	}

	// TCP: the engine sets TCP_NODELAY on every connection.
	_, addr := listenEcho(t, reactor.Config{IOThreads: 1})
	opened := make(chan *reactor.Conn, 1)
	if _, err := e.Dial(addr, &funcHandler{onOpen: func(c *reactor.Conn) { opened <- c }}, reactor.DialOptions{}); err != nil {
		t.Fatal(err)
	}
	d := testutil.Await(t, opened, 5*time.Second, "the dialled connection")
	nodelay := -1
	if err := d.Control(func(fd uintptr) { nodelay, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY) }); err != nil || nodelay != 1 {
		t.Fatalf("Control on TCP: %v, TCP_NODELAY %d, want 1", err, nodelay)
	}
	d.Close()
}

// TestUnixMode: UnixMode sets the socket file's permission bits, fewer or
// more than the umask leaves (the file is born with the socket's mode less
// the umask, then widened if the umask took bits away); 0 leaves the
// kernel's 0777 less the umask. An abstract name, a TCP address and bits
// beyond 0777 are refused with no descriptor left open.
func TestUnixMode(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	umask := unix.Umask(0o022)
	defer unix.Umask(umask)
	dir := t.TempDir()
	var born os.FileMode
	defer sock.SetUnixBoundHook(func(path string) {
		st, err := os.Stat(path)
		if err != nil {
			t.Errorf("the file right after bind: %v", err)
			return
		}
		born = st.Mode().Perm()
	})()
	for i, tc := range []struct{ ask, want os.FileMode }{
		{0, 0o755},
		{0o600, 0o600},
		{0o660, 0o660}, // the umask would take g+w away
		{0o666, 0o666},
	} {
		path := filepath.Join(dir, fmt.Sprintf("m%d.sock", i))
		ln := listenUnixEcho(t, e, "unix:"+path, reactor.ListenOptions{UnixMode: tc.ask})
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != tc.want {
			t.Fatalf("UnixMode %v: the file's mode is %v (%v), want %v", tc.ask, st.Mode().Perm(), err, tc.want)
		}
		if tc.ask != 0 && born&^tc.ask != 0 {
			t.Fatalf("UnixMode %v: the file was born %v, with bits it was not to have", tc.ask, born)
		}
		if err := echoOverUnix(path, 100, uint64(i)); err != nil {
			t.Fatal(err)
		}
		ln.Close()
	}
	for _, tc := range []struct {
		addr string
		mode os.FileMode
	}{
		{"unix:@reactor-mode-test", 0o600},
		{"127.0.0.1:0", 0o600},
		{"unix:" + filepath.Join(dir, "setuid.sock"), os.ModeSetuid | 0o600},
	} {
		if _, err := e.Listen(tc.addr, &echo.Handler{}, reactor.ListenOptions{UnixMode: tc.mode}); err == nil || !strings.Contains(err.Error(), "UnixMode") {
			t.Errorf("Listen %s with UnixMode %v: %v, want a refusal naming UnixMode", tc.addr, tc.mode, err)
		}
	}
	// The echo connections' server sides close once they see EOF.
	if !waitFor(5*time.Second, func() bool { return e.Stats().FDs == 0 }) {
		t.Fatalf("%d descriptors open after the listeners closed and the refusals", e.Stats().FDs)
	}
}

// TestUnixAbort: Abort on a Unix-domain connection, which has no reset:
// with nothing unread the peer reads end of stream; with bytes it sent
// still unread, ECONNRESET. Both are what docs/unix.md and Abort say.
func TestUnixAbort(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	path := unixSocketPath(t, "abort.sock")
	accepted := make(chan *reactor.Conn, 2)
	if _, err := e.Listen("unix:"+path, &funcHandler{onOpen: func(c *reactor.Conn) { accepted <- c }}, reactor.ListenOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, unread := range []bool{false, true} {
		peer, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		peer.SetDeadline(time.Now().Add(5 * time.Second))
		c := testutil.Await(t, accepted, 5*time.Second, "the accepted connection")
		if unread {
			// No read is issued, so these stay in the engine's socket (a
			// Unix-domain write queues them there before it returns).
			if _, err := peer.Write([]byte("never read")); err != nil {
				t.Fatal(err)
			}
		}
		c.Abort()
		_, err = peer.Read(make([]byte, 1))
		switch {
		case unread && !errors.Is(err, syscall.ECONNRESET):
			t.Errorf("Abort with the peer's bytes unread: the peer's read got %v, want ECONNRESET", err)
		case !unread && err != io.EOF:
			t.Errorf("Abort with nothing unread: the peer's read got %v, want EOF", err)
		}
		peer.Close()
	}
}
