package callstack_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/ioreactor/reactor/internal/callstack"
)

//go:noinline
func inner() []uintptr {
	pcs := make([]uintptr, 16)
	return pcs[:runtime.Callers(1, pcs)]
}

//go:noinline
func outer() []uintptr { return inner() }

// TestFormatShowsFramesInnermostFirst: each frame is its function and,
// a tab deeper, its file:line; indent prefixes both; omitted frames are
// gone.
func TestFormatShowsFramesInnermostFirst(t *testing.T) {
	pcs := outer()
	got := callstack.Format(pcs, "\t", func(f runtime.Frame) bool { return strings.HasSuffix(f.Function, ".outer") })
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) < 4 || len(lines)%2 != 0 {
		t.Fatalf("want pairs of lines, got:\n%s", got)
	}
	if !strings.HasSuffix(lines[0], "callstack_test.inner") || !strings.HasPrefix(lines[0], "\t") || strings.HasPrefix(lines[0], "\t\t") {
		t.Errorf("first line %q: want the innermost function, indented once", lines[0])
	}
	if !strings.HasPrefix(lines[1], "\t\t") || !strings.Contains(lines[1], "callstack_test.go:") {
		t.Errorf("second line %q: want its file:line, indented twice", lines[1])
	}
	if strings.Contains(got, ".outer") {
		t.Errorf("an omitted frame is shown:\n%s", got)
	}
	if !strings.Contains(got, "TestFormatShowsFramesInnermostFirst") {
		t.Errorf("the test's own frame is missing:\n%s", got)
	}
}
