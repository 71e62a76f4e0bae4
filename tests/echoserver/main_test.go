package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
	"github.com/ioreactor/reactor/internal/testutil"
)

// TestEchoServerBinary builds the binary, starts it on a free port, echoes
// through it, stops it with SIGINT and checks its exit and its counters.
func TestEchoServerBinary(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows cannot deliver SIGINT to another process (os.Process.Signal(os.Interrupt) is unimplemented), which is how this test stops the server; and under Wine the test has no go command to build it. The engine's shutdown on Windows is covered by sock's TestShutdownClosesEverything")
	}
	bin := filepath.Join(t.TempDir(), "echoserver")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	backend := testutil.WithTestBackend(reactor.Config{}).Backend
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-io-threads", "2", "-backend", backend.String())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatalf("no output; stderr: %s", stderr.String())
	}
	addr, ok := strings.CutPrefix(lines.Text(), "listening on ")
	if !ok {
		t.Fatalf("first line %q, want \"listening on ADDR\"", lines.Text())
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := bytes.Repeat([]byte("echo "), 10000)
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through the binary: %v", err)
	}
	c.Close()

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGINT: %v; stderr: %s", err, stderr.String())
	}
	if backend != reactor.BackendAuto && !strings.Contains(rest.String(), "backend:              "+backend.String()) {
		t.Errorf("counters do not name backend %v:\n%s", backend, rest.String())
	}
	for _, want := range []string{"connections total:    1", "connections open:     0", "buffers in use:       0", "engine fds:           0"} {
		if !strings.Contains(rest.String(), want) {
			t.Errorf("counters after shutdown lack %q:\n%s", want, rest.String())
		}
	}
}
