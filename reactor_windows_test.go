package reactor_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ioreactor/reactor"
)

// TestWindowsEngineSaysItsCompletionMode: the engine on Windows chooses
// skip-on-success from the Winsock providers and says what it chose, in
// the stats and in the log.
func TestWindowsEngineSaysItsCompletionMode(t *testing.T) {
	var logged []string
	e, err := reactor.New(reactor.Config{IOThreads: 2, Logf: func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(5 * time.Second)
	mode := e.Stats().CompletionMode
	if !strings.HasPrefix(mode, "on: ") && !strings.HasPrefix(mode, "off: ") {
		t.Fatalf("CompletionMode %q names no decision", mode)
	}
	if len(logged) != 1 || !strings.HasSuffix(logged[0], mode[strings.Index(mode, ": ")+2:]) {
		t.Fatalf("logged %q, want one line giving the reason of %q", logged, mode)
	}
	t.Logf("completion mode: %s", mode)
	off, err := reactor.New(reactor.Config{IOThreads: 1, NoSkipOnSuccess: true})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Shutdown(5 * time.Second)
	if m := off.Stats().CompletionMode; !strings.HasPrefix(m, "off: switched off") {
		t.Fatalf("NoSkipOnSuccess gave %q", m)
	}
}
