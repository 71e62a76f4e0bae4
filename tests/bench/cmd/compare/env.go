package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// machine describes where the benchmark ran.
type machine struct {
	cpus     int    // online CPUs (nproc)
	model    string // /proc/cpuinfo model name
	kernel   string // uname -r
	goVer    string
	date     time.Time
	clkTck   int64  // clock ticks per second of /proc/PID/stat
	clkNote  string // where clkTck came from
	taskset  string // path of taskset(1), or "" when runs are not pinned
	pinNote  string
	hardFile uint64 // RLIMIT_NOFILE hard limit
	// loadStart is /proc/loadavg's first three fields before the runs.
	loadStart string
	// reactor is the commit the servers were built from, with the files
	// that differed from it.
	reactor string
}

// probeEnv looks at the machine and at the repository above root (the
// module root); it installs nothing.
func probeEnv(pin bool, root string) machine {
	m := machine{cpus: runtime.NumCPU(), goVer: runtime.Version(), date: time.Now().UTC(), loadStart: loadAvg()}
	m.reactor = reactorVersion(filepath.Join(root, "..", ".."))
	if out, err := exec.Command("nproc").Output(); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil {
			m.cpus = n
		}
	}
	m.model = cpuModel()
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		m.kernel = unix.ByteSliceToString(u.Release[:])
	}
	m.clkTck, m.clkNote = 100, "assumed (getconf CLK_TCK failed)"
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			m.clkTck, m.clkNote = n, "from getconf CLK_TCK"
		}
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil {
		m.hardFile = lim.Max
	}
	switch path, err := exec.LookPath("taskset"); {
	case !pin:
		m.pinNote = "not pinned (-pin=false)"
	case err != nil:
		m.pinNote = "not pinned (no taskset)"
	case m.cpus < 2:
		m.pinNote = "not pinned (one CPU)"
	default:
		m.taskset = path
		m.pinNote = "server pinned to CPU 0, client to CPU 1 (taskset)"
	}
	return m
}

func (m machine) summary() string {
	return fmt.Sprintf("reactor %s; %d CPUs (%s), Linux %s, %s; CLK_TCK %d %s; %s; RLIMIT_NOFILE hard %d; load average %s",
		m.reactor, m.cpus, m.model, m.kernel, m.goVer, m.clkTck, m.clkNote, m.pinNote, m.hardFile, m.loadStart)
}

// reactorVersion is the commit checked out in repo, and the Go files
// outside tests/bench (tests aside) that differ from it: the servers are
// built from the working tree, so those changes are in what was measured.
func reactorVersion(repo string) string {
	out, err := exec.Command("git", "-C", repo, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "at an unknown commit (git rev-parse failed)"
	}
	v := "commit " + strings.TrimSpace(string(out))
	out, err = exec.Command("git", "-C", repo, "status", "--porcelain", "--untracked-files=all").Output()
	if err != nil {
		return v + " (git status failed)"
	}
	var changed []string
	for line := range strings.Lines(string(out)) {
		// "XY path", or "XY old -> new" for a rename.
		if len(line) < 4 {
			continue
		}
		path := strings.TrimSpace(line[3:])
		if _, after, ok := strings.Cut(path, " -> "); ok {
			path = after
		}
		builds := strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") ||
			path == "go.mod" || path == "go.sum"
		if builds && !strings.HasPrefix(path, "tests/bench/") {
			changed = append(changed, path)
		}
	}
	if len(changed) > 0 {
		v += " plus uncommitted changes to " + strings.Join(changed, ", ")
	}
	return v
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// pinned prefixes argv with taskset when runs are pinned.
func (m machine) pinned(cpu int, argv ...string) []string {
	if m.taskset == "" {
		return argv
	}
	return append([]string{m.taskset, "-c", strconv.Itoa(cpu)}, argv...)
}
