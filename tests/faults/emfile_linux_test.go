package faults_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/echo"
	"github.com/ioreactor/reactor/internal/testutil"
)

// The child of TestEMFILEInChild is this test binary run again with
// emfileChildEnv set: Go raises the soft descriptor limit when a process
// starts, so a limit low enough to run out is set in a process of its
// own, after the start, and no other test shares it.
const (
	emfileChildEnv = "REACTOR_FAULTS_EMFILE_CHILD"
	// emfileSpare is how many descriptors the child may still open once
	// its echo listener is up.
	emfileSpare = 64
	// Lines the child writes on stdout.
	emfileAddrLine  = "emfile-child addr "
	emfileStatsLine = "emfile-child stats "
)

// emfileStats is what the child reports every 50 ms.
type emfileStats struct {
	At            time.Time
	Accepts       int64
	AcceptCalls   int64
	AcceptBackoff int64
}

// TestEMFILEInChild: an echo engine in a child process whose descriptor
// limit leaves it 64 to spare; 500 clients (200 with -short) connect at
// once. While the child is out of descriptors, accepting backs off
// instead of spinning (under 1,000 accept calls a second, where a spin
// makes hundreds of thousands) and connections already open keep
// echoing; when clients go away, accepting resumes within a second; every
// client is served in the end, and the listener still takes a new one.
func TestEMFILEInChild(t *testing.T) {
	if os.Getenv(emfileChildEnv) != "" {
		emfileChild(t)
		return
	}
	clients := 500
	if testing.Short() {
		clients = 200
	}
	ch := startEMFILEChild(t)

	// Connections opened before the flood, echoing all along.
	keepers := make([]net.Conn, 4)
	for i := range keepers {
		keepers[i] = dialSized(t, ch.addr, sockSizes{})
		if err := echoLine(keepers[i], i); err != nil {
			t.Fatalf("keeper %d before the flood: %v", i, err)
		}
	}

	// The flood: each client sends one line and waits for its echo; it
	// closes when told to (quit), once its echo came.
	type client struct {
		c      net.Conn
		echoed chan struct{}
		quit   chan struct{}
	}
	var echoes atomic.Int64
	errs := make(chan error, clients)
	all := make([]*client, clients)
	for i := range all {
		cl := &client{c: dialSized(t, ch.addr, sockSizes{}), echoed: make(chan struct{}), quit: make(chan struct{})}
		all[i] = cl
		go func() {
			if err := echoLine(cl.c, 1000+i); err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
			} else {
				echoes.Add(1)
				close(cl.echoed)
			}
			<-cl.quit
			cl.c.Close()
		}()
	}
	t.Cleanup(func() {
		for _, cl := range all {
			select {
			case <-cl.quit:
			default:
				close(cl.quit)
			}
		}
	})

	// The child runs out: it backs off, and the echoes stop growing.
	waitCond(t, 10*time.Second, "the child backing off at its descriptor limit", func() bool {
		return ch.latest().AcceptBackoff > 0
	})
	settled := echoes.Load()
	for stable := time.Now(); time.Since(stable) < 300*time.Millisecond; time.Sleep(20 * time.Millisecond) {
		if n := echoes.Load(); n != settled {
			settled, stable = n, time.Now()
		}
	}
	if settled >= int64(clients) {
		t.Fatalf("all %d clients were served: the descriptor limit did not bite", clients)
	}
	t.Logf("at the limit: %d of %d clients served, %d wait in the accept queue", settled, clients, int64(clients)-settled)

	// (a) and (b): over at least a second at the limit, few accept calls,
	// and the keepers echo on.
	before := ch.latest()
	kept := 0
	for start := time.Now(); time.Since(start) < 1200*time.Millisecond; time.Sleep(50 * time.Millisecond) {
		for i, k := range keepers {
			if err := echoLine(k, i); err != nil {
				t.Fatalf("keeper %d stopped echoing while the child was out of descriptors: %v", i, err)
			}
			kept++
		}
	}
	time.Sleep(100 * time.Millisecond) // a report taken after the window
	after := ch.latest()
	window := after.At.Sub(before.At)
	calls := after.AcceptCalls - before.AcceptCalls
	rate := float64(calls) / window.Seconds()
	t.Logf("at the limit for %v: %d accept calls (%.0f/s), %d back-offs, %d accepts; %d keeper echoes",
		window.Round(time.Millisecond), calls, rate, after.AcceptBackoff-before.AcceptBackoff, after.Accepts-before.Accepts, kept)
	if window < time.Second {
		t.Fatalf("the child's reports cover %v of the window, want at least 1s", window)
	}
	if rate >= 1000 {
		t.Errorf("%.0f accept calls a second at the descriptor limit: accept spins", rate)
	}
	if after.AcceptBackoff == before.AcceptBackoff {
		t.Errorf("no back-off in %v at the limit: the listener stopped retrying", window)
	}
	if n := echoes.Load(); n != settled {
		t.Errorf("%d clients served during the window at the limit, want none", n-settled)
	}

	// (c): ten served clients leave; waiting ones are served within 1 s.
	freed := 0
	for _, cl := range all {
		select {
		case <-cl.echoed:
			if freed < 10 {
				close(cl.quit)
				freed++
			}
		default:
		}
	}
	start := time.Now()
	waitCond(t, time.Second, "a waiting client served after descriptors were freed", func() bool {
		return echoes.Load() > settled
	})
	t.Logf("%d clients closed: the first waiting client served %v later", freed, time.Since(start).Round(time.Millisecond))

	// Every client closes once served: all are served in the end.
	for _, cl := range all {
		select {
		case <-cl.quit:
		default:
			close(cl.quit)
		}
	}
	start, waiting := time.Now(), int64(clients)-echoes.Load()
	waitCond(t, 30*time.Second, "every client served", func() bool {
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		return echoes.Load() == int64(clients)
	})
	t.Logf("the other %d clients served in %v", waiting, time.Since(start).Round(time.Millisecond))

	// (d): the listener lives: a new client echoes, the keepers too.
	fresh := dialSized(t, ch.addr, sockSizes{})
	if err := echoLine(fresh, 9999); err != nil {
		t.Fatalf("a new client after the flood: %v", err)
	}
	for i, k := range keepers {
		if err := echoLine(k, i); err != nil {
			t.Fatalf("keeper %d after the flood: %v", i, err)
		}
	}
	want := int64(len(keepers) + clients + 1)
	waitCond(t, 5*time.Second, "the child's report of every accept", func() bool { return ch.latest().Accepts == want })
	ch.stop(t)
}

// echoLine sends a line naming i on c and reads the same line back.
func echoLine(c net.Conn, i int) error {
	msg := fmt.Appendf(nil, "line %06d\n", i)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return testutil.RoundTrip(c, msg, make([]byte, len(msg)))
}

// emfileChildProc is the parent's view of the child: its echo address,
// its latest report, and what else it wrote (for a failure's message).
type emfileChildProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	done  chan struct{} // stdout reached EOF

	mu     sync.Mutex
	stats  emfileStats
	output []string
}

// startEMFILEChild starts the child and waits for its address. The child
// is killed when the test ends if it has not exited by then.
func startEMFILEChild(t *testing.T) *emfileChildProc {
	t.Helper()
	args := []string{"-test.run=^TestEMFILEInChild$", "-test.count=1", "-test.v", "-test.timeout=2m"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), emfileChildEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := &emfileChildProc{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			stdin.Close()
			<-ch.done
			cmd.Wait()
		}
	})
	addr := make(chan string, 1)
	go func() {
		defer close(ch.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, emfileAddrLine):
				addr <- strings.TrimPrefix(line, emfileAddrLine)
			case strings.HasPrefix(line, emfileStatsLine):
				var s emfileStats
				if json.Unmarshal([]byte(strings.TrimPrefix(line, emfileStatsLine)), &s) == nil {
					ch.mu.Lock()
					ch.stats = s
					ch.mu.Unlock()
				}
			default:
				ch.mu.Lock()
				ch.output = append(ch.output, line)
				ch.mu.Unlock()
			}
		}
	}()
	select {
	case ch.addr = <-addr:
	case <-ch.done:
		t.Fatalf("the child exited before it listened:\n%s", ch.said())
	case <-time.After(30 * time.Second):
		t.Fatalf("the child did not listen within 30s:\n%s", ch.said())
	}
	return ch
}

func (ch *emfileChildProc) latest() emfileStats {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.stats
}

func (ch *emfileChildProc) said() string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return strings.Join(ch.output, "\n")
}

// stop closes the child's stdin, which ends it, and fails t unless it
// passed (its engine shut down clean, its leak checks held).
func (ch *emfileChildProc) stop(t *testing.T) {
	t.Helper()
	ch.stdin.Close()
	select {
	case <-ch.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the child did not exit within 30s of its stdin closing:\n%s", ch.said())
	}
	if err := ch.cmd.Wait(); err != nil {
		t.Fatalf("the child failed (%v):\n%s", err, ch.said())
	}
}

// emfileChild is the child's side: an echo listener with only
// emfileSpare descriptors to spare, reporting its counters on stdout
// every 50 ms until its stdin closes.
func emfileChild(t *testing.T) {
	e := testutil.Engine(t, reactor.Config{IOThreads: 1})
	ln, err := e.Listen("127.0.0.1:0", &echo.Handler{}, reactor.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(testutil.FDs() + emfileSpare)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	// Deferred calls run before the engine's cleanup, whose leak checks
	// need descriptors again.
	defer func() {
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
			t.Error(err)
		}
	}()
	stdinClosed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	fmt.Printf("%s%s\n", emfileAddrLine, ln.Addr())
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stdinClosed:
			return
		case <-tick.C:
		}
		s := e.Stats()
		line, err := json.Marshal(emfileStats{
			At: time.Now(), Accepts: s.Accepts, AcceptCalls: s.AcceptCalls,
			AcceptBackoff: s.AcceptBackoff,
		})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("%s%s\n", emfileStatsLine, line)
	}
}
