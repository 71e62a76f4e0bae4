//go:build !lockcheck

package lock_test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
)

// TestLockAndUnlockInline: without the tag, Mutex's Lock and Unlock must
// inline into their callers, or every engine lock pays a call on top of
// sync.Mutex (lock.go). The inliner's budget is 80 and they cost about 71
// and 77, so a statement more, or a heavier sync.Mutex in a future Go,
// would tip them over without any timing noticing. This asks the compiler
// (go build -gcflags=-m) whether it inlined them into package pool. The
// decision does not depend on the platform; it is checked on Linux, where
// the Go toolchain that runs the tests is at hand.
func TestLockAndUnlockInline(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: compiling package pool with -gcflags=-m takes a few seconds")
	}
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goCmd, "build", "-gcflags=-m", "github.com/ioreactor/reactor/pool").CombinedOutput()
	if err != nil {
		t.Fatalf("go build -gcflags=-m: %v\n%s", err, out)
	}
	for _, method := range []string{"Lock", "Unlock"} {
		re := regexp.MustCompile(`pool/\S+\.go:\d+:\d+: inlining call to lock\.\(\*Mutex\[[^]]*\]\)\.` + method + `\n`)
		if !re.Match(out) {
			t.Errorf("the compiler inlined no call to Mutex.%s into package pool: it now costs a function call on every engine lock", method)
		}
	}
}
