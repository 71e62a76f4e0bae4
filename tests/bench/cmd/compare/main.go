// Command compare is the peer benchmark's runner: it drives the same echo
// service on reactor, gnet v2, nbio and Go's net package (cmd/server) with
// the load client (cmd/load), one server process at a time, and
// prints a table of the medians over rounds, with reactor's ratio to the
// best peer for each metric.
//
//	cd tests/bench && go run ./cmd/compare               # the full run, ~7 minutes
//	cd tests/bench && go run ./cmd/compare -quick        # a smoke test, ~30 s
//	cd tests/bench && go run ./cmd/compare -write-docs   # also write docs/benchmarks.{md,svg}
//	cd tests/bench && go run ./cmd/compare -servers reactor,reactor-busy,reactor-hop,gnet -workloads pp64,pp512
//
// The last measures reactor's latency features: reactor-busy is reactor
// with Config.BusyPoll (-busy-poll, 50µs when 0), reactor-hop is reactor
// echoing from worker goroutines instead of on the I/O thread; each is
// stated as a ratio to plain reactor. -features adds both to -servers.
//
// For every workload and round the servers run in turn, the order rotated
// by one each round, so that drift on a shared machine spreads over all of
// them. When taskset(1) exists and there are two CPUs or more, the server
// is pinned to CPU 0 and the client to CPU 1. Each run warms up, then
// measures a window; the server's CPU time over the window comes from
// /proc/PID/stat.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// options are the runner's flags.
type options struct {
	rounds     int
	window     time.Duration
	warmup     time.Duration
	workloads  string
	servers    string
	scale      float64
	idleConns  int
	idleActive int
	inFlight   int
	driver     string
	ioThreads  int
	busyPoll   time.Duration
	features   bool
	paired     bool
	pin        bool
	quick      bool
	writeDocs  bool
	raw        string
}

func main() {
	if err := run(); err != nil {
		fatalf("%v", err)
	}
}

func run() error {
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every server once per workload")
	flag.DurationVar(&o.window, "window", 5*time.Second, "measured window of each run")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each window")
	flag.StringVar(&o.workloads, "workloads", "all", "comma-separated subset of "+strings.Join(workloadNames(), ","))
	flag.StringVar(&o.servers, "servers", strings.Join(allServers, ","), "comma-separated servers, in the first round's order")
	flag.Float64Var(&o.scale, "scale", 1, "multiplies every workload's connection count (at least 1 each)")
	flag.IntVar(&o.idleConns, "idle-conns", 10000, "idle workload: idle connections (before -scale)")
	flag.IntVar(&o.idleActive, "idle-active", 100, "idle workload: active ping-pong connections meanwhile (before -scale)")
	flag.IntVar(&o.inFlight, "inflight", 1, "ping-pong messages in flight per connection")
	flag.StringVar(&o.driver, "client", "", "the load client's driver: uring or epoll; empty means uring where the kernel has it")
	flag.IntVar(&o.ioThreads, "io-threads", 1, "event loops of every server (net: ignored)")
	flag.DurationVar(&o.busyPoll, "busy-poll", 0, "reactor-busy's Config.BusyPoll; 0 means "+defaultBusyPoll.String()+" (plain reactor never busy-polls)")
	flag.BoolVar(&o.features, "features", false, "also run the variants reactor-busy and reactor-hop (latency features against plain reactor)")
	flag.BoolVar(&o.paired, "paired", false, "also run reactor and each peer at the same time, pair by pair, for ratios the machine's drift cannot bias (not the idle workload)")
	flag.BoolVar(&o.pin, "pin", true, "pin the server to CPU 0 and the client to CPU 1 with taskset, if it exists")
	flag.BoolVar(&o.quick, "quick", false, "smoke test: 1 round, 1 s windows, 0.5 s warm-up, 1,000 idle connections (explicit flags win)")
	flag.BoolVar(&o.writeDocs, "write-docs", false, "write ../../docs/benchmarks.md and benchmarks.svg (relative to the module root)")
	flag.StringVar(&o.raw, "raw", "", "also write every run's result as JSON to this file")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", flag.Args())
	}
	if o.quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			o.rounds = 1
		}
		if !set["window"] {
			o.window = time.Second
		}
		if !set["warmup"] {
			o.warmup = 500 * time.Millisecond
		}
		if !set["idle-conns"] {
			o.idleConns = 1000
		}
	}
	if o.rounds < 1 || o.window <= 0 || o.warmup < 0 || o.scale <= 0 || o.inFlight < 1 || o.ioThreads < 1 {
		return fmt.Errorf("-rounds, -window, -scale, -inflight and -io-threads must be positive, -warmup ≥ 0")
	}
	works, err := pickWorkloads(o)
	if err != nil {
		return err
	}
	servers, err := pickServers(o.servers, o.features)
	if err != nil {
		return err
	}
	if o.paired && (!slices.Contains(servers, "reactor") || len(pairPeers(servers)) == 0) {
		return fmt.Errorf("-paired needs reactor and at least one peer in -servers")
	}
	if o.paired && len(pairedWorkloads(works)) == 0 {
		return fmt.Errorf("-paired needs a workload other than idle in -workloads (idle is not paired)")
	}

	root, err := moduleRoot()
	if err != nil {
		return err
	}
	env := probeEnv(o.pin, root)
	fmt.Fprintf(os.Stderr, "compare: %s\n", env.summary())
	tmp, err := os.MkdirTemp("", "reactor-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bins, err := build(root, tmp)
	if err != nil {
		return err
	}

	start := time.Now()
	res := runAll(o, env, bins, works, servers)
	var pairs []pairResult
	peers := pairPeers(servers)
	if o.paired {
		pairs = runPaired(o, env, bins, works, peers)
	}
	rep := newReport(o, env, works, servers, res, time.Since(start))
	if o.paired {
		rep.paired = newPairedReport(env, works, peers, pairs)
		rep.failures += rep.paired.failures
	}
	rep.print(os.Stdout)
	if rep.paired != nil {
		rep.paired.print(os.Stdout)
	}

	if o.raw != "" {
		if err := writeRaw(o.raw, res, pairs); err != nil {
			return err
		}
	}
	if o.writeDocs {
		docs := filepath.Join(root, "..", "..", "docs")
		if err := rep.writeDocs(docs); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "compare: wrote %s and %s\n",
			filepath.Join(docs, "benchmarks.md"), filepath.Join(docs, "benchmarks.svg"))
	}
	if rep.failures > 0 {
		return fmt.Errorf("%d runs failed", rep.failures)
	}
	return nil
}

// moduleRoot is the directory of tests/bench's go.mod, where the binaries
// are built from and the docs path is resolved against.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside a module: run from tests/bench")
	}
	return filepath.Dir(mod), nil
}

// binaries are the built server and load client.
// binaries are the built programs, in dir, the run's temporary directory
// (where Unix-domain workloads put their sockets too).
type binaries struct{ server, load, dir string }

// build compiles the server and the client once, so no run pays for go run.
func build(root, dir string) (binaries, error) {
	b := binaries{server: filepath.Join(dir, "server"), load: filepath.Join(dir, "load"), dir: dir}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, t := range []struct{ out, pkg string }{{b.server, "./cmd/server"}, {b.load, "./cmd/load"}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", t.out, t.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %w\n%s", t.pkg, err, out)
		}
	}
	return b, nil
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "compare: "+format+"\n", args...)
	os.Exit(1)
}
