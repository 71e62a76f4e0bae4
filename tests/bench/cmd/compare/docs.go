package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// writeDocs writes benchmarks.md and benchmarks.svg into dir.
func (rep *report) writeDocs(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "benchmarks.svg"), []byte(rep.chart()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "benchmarks.md"), []byte(rep.markdown()), 0o644)
}

func (rep *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := rep.m

	p("# Benchmarks: reactor and its peers\n\n")
	p("<!-- Written by `go run ./cmd/compare -write-docs` in tests/bench: change the runner, not this file. -->\n\n")
	p("The same echo service on four engines, each in a process of its own, driven by the same load client: ")
	p("**reactor** (this repository, `internal/echo`), **gnet** v2.9.7, **nbio** v1.6.8, and Go's **net** package ")
	p("(a goroutine per connection). Every reply is checked byte for byte. ")
	p("Figures are medians over %d round(s) of a %v window after a %v warm-up; ", rep.o.rounds, rep.o.window, rep.o.warmup)
	p("run on %s.\n\n", m.date.Format("2006-01-02"))
	variants := rep.ranVariants()
	if len(variants) > 0 {
		p("Variants of reactor ran in the same rounds to measure its latency features (see [Latency features](#latency-features)): %s. ",
			strings.Join(variants, ", "))
		p("They are not peers: the comparison with the best peer leaves them out.\n\n")
	}
	if rep.o.quick {
		p("> **This page was written by a `-quick` run** (smoke test settings): its numbers are not a comparison.\n\n")
	}
	p("![messages/s and p99 latency per server and workload](benchmarks.svg)\n\n")

	p("## Results\n\n")
	p("| workload | server |")
	for _, mt := range metrics {
		p(" %s |", mt.header)
	}
	p(" msgs/s over rounds | ok |\n|---|---|%s--:|--:|\n", strings.Repeat("--:|", len(metrics)))
	for _, w := range rep.works {
		for _, s := range rep.servers {
			c := rep.cells[w.name][s]
			row := []string{w.title(), s}
			for _, mt := range metrics {
				v := c.val[mt.id]
				if !mt.applies(w) {
					v = math.NaN()
				}
				cellText := fmtOrDash(mt.format, v)
				if s == "reactor" {
					cellText = "**" + cellText + "**"
				}
				row = append(row, cellText)
			}
			row = append(row, c.spread(), fmt.Sprintf("%d/%d", c.ok, c.runs))
			p("| %s |\n", strings.Join(row, " | "))
		}
	}
	p("\n")

	p("## reactor against the best peer\n\n")
	p("reactor's median divided by the best other server's median, that server in parentheses. ")
	p("Above 1 is better for msgs/s and MB/s; below 1 is better for latency, CPU per message and RSS per connection.\n\n")
	var ratioMetrics []metric
	for _, mt := range metrics {
		if mt.ratio {
			ratioMetrics = append(ratioMetrics, mt)
		}
	}
	p("| workload |")
	for _, mt := range ratioMetrics {
		p(" %s |", mt.header)
	}
	p("\n|---|%s\n", strings.Repeat("--:|", len(ratioMetrics)))
	for _, w := range rep.works {
		p("| %s |", w.title())
		for _, mt := range ratioMetrics {
			if !mt.applies(w) {
				p(" – |")
				continue
			}
			p(" %v |", rep.ratioFor(w, mt))
		}
		p("\n")
	}
	p("\n")

	if rep.paired != nil {
		rep.paired.section(p)
	}
	if len(variants) > 0 {
		rep.featuresSection(p)
	}

	var failed []string
	for _, w := range rep.works {
		for _, s := range rep.servers {
			for _, e := range rep.cells[w.name][s].errs {
				failed = append(failed, fmt.Sprintf("- %s, %s, %s", w.title(), s, e))
			}
		}
	}
	if rep.paired != nil {
		for _, f := range rep.paired.failed() {
			failed = append(failed, "- "+f)
		}
	}
	if len(failed) > 0 {
		p("## Failed runs\n\n%s\n\n", strings.Join(failed, "\n"))
	}

	p("## Machine\n\n")
	p("| | |\n|---|---|\n")
	p("| reactor | %s |\n", m.reactor)
	p("| CPUs (`nproc`) | %d |\n", m.cpus)
	p("| CPU (`/proc/cpuinfo` model name) | %s |\n", m.model)
	p("| kernel (`uname -r`) | %s |\n", m.kernel)
	p("| Go | %s |\n", m.goVer)
	p("| date | %s |\n", m.date.Format(time.RFC3339))
	p("| load average (1, 5, 15 min) at start, at end | %s; %s |\n", m.loadStart, loadAvg())
	p("| pinning | %s |\n", m.pinNote)
	p("| load client's driver | %s |\n", rep.clientDrivers())
	p("| clock ticks per second | %d, %s |\n", m.clkTck, m.clkNote)
	p("| RLIMIT_NOFILE (hard) | %d |\n", m.hardFile)
	p("| the run took | %v |\n\n", rep.elapsed.Round(time.Second))
	p("The machine was shared with other work while this ran, so figures drift from run to run ")
	p("(15–20%% is usual here, sometimes much more); the \"msgs/s over rounds\" column shows each server's spread. ")
	p("Differences smaller than that spread say nothing.\n\n")

	p("## How the numbers are made\n\n")
	p("- **Servers** (`tests/bench/cmd/server`), each with %d event loop(s): ", rep.o.ioThreads)
	p("reactor is `reactor.New` with `IOThreads: %d` (and the default `BackendAuto`, which takes io_uring on this kernel) and the repository's `internal/echo` handler ", rep.o.ioThreads)
	p("(each read's buffer goes to `WriteBuffer`, then the next read is issued, on the I/O thread)")
	if slices.Contains(variants, "reactor-busy") {
		p("; reactor-busy is the same with `BusyPoll: %v`", rep.o.busyPollFor())
	}
	if slices.Contains(variants, "reactor-epoll") {
		p("; reactor-epoll is the same on `BackendEpoll`")
	}
	if slices.Contains(variants, "reactor-hop") {
		p("; reactor-hop's `OnRead` only sends the buffer on a channel to %s, which make the same two calls", hopWorkers)
	}
	p("; gnet runs one event loop (`WithMulticore(false)`, `WithNumEventLoop`, `WithLockOSThread`) and echoes with ")
	p("`c.Next(-1)` and `c.Write` in `OnTraffic`; nbio runs `NPoller` pollers (`LockPoller`) and echoes with `c.Write` ")
	p("in `OnData`; net accepts with `net.Listen` and copies through a 16 KiB buffer in a goroutine per connection. ")
	p("Every engine keeps its defaults otherwise (TCP_NODELAY on in all four).\n")
	p("- **Client** (`tests/bench/internal/load`, run as `cmd/load`): one OS thread (`runtime.LockOSThread`) drives every ")
	p("connection; no goroutine per connection. In this run it drove them through **%s** ", rep.clientDrivers())
	p("(`-client`): `uring` queues every connection's receive (multishot, into buffers it provides) and send on one ")
	p("io_uring, the engine's own `poller.NewURing`, and one `io_uring_enter` per loop turn submits them all and collects ")
	p("every completion; `epoll` uses non-blocking sockets, edge-triggered epoll and a `read` and a `write` call per reply. ")
	p("The ring client costs less CPU per message than the epoll client (measured side by side, see docs/performance.md); ")
	p("the client CPU column says whether it still set the pace. ")
	p("Ping-pong keeps %d message(s) in flight per connection; a message carries the connection's id and a counter, ", rep.o.inFlight)
	p("then a pattern, and its reply must be equal (`bytes.Equal`). Streaming writes 64 KiB chunks and keeps at most ")
	p("1 MiB unechoed per connection; every echoed byte is compared with the pattern. Latency is from queuing a message ")
	p("to its whole reply, read from a monotonic clock once per batch of events, recorded in `internal/hist` (1/64 relative error). ")
	p("Connections open at most 128 at a time so no accept queue overflows; at the end they are reset (SO_LINGER 0).\n")
	p("- **Rounds**: for each workload, each round runs every server once, the order rotated by one each round ")
	p("(%s first in round 1). Each run starts a fresh server, opens the connections, warms up %v, ", rep.servers[0], rep.o.warmup)
	p("measures %v, then stops the server.\n", rep.o.window)
	p("- **msgs/s**: replies received whole and checked, per second of the window (streaming: 64 KiB chunks). ")
	p("**MB/s**: bytes echoed per second, one way, 10^6 bytes.\n")
	p("- **server CPU µs/msg**: the server's utime+stime over the window (`/proc/PID/stat`, in clock ticks, all threads) ")
	p("divided by the messages; **server CPU** and **client CPU** are CPU time over the window as a share of one core ")
	p("(the client's from `getrusage`). A client near 100%% means the client, not the server, set the pace; ")
	p("CPU per message is then the fairer comparison.\n")
	p("- **slowest conn**: what the active connection that got least done in the window (replies; streaming: bytes) ")
	p("got, as a share of the mean over the active connections. 100%% is perfectly fair; near 0, a connection starved. ")
	p("It explains streaming latencies: with 1 MiB in flight on each of 50 connections, a fair server's chunk latency is ")
	p("about 50 MiB divided by its throughput (Little's law); a p50 far below that with a p99 far above means some ")
	p("connections were served at once while others waited.\n")
	p("- **RSS KiB/conn** (idle workload): the server's `VmRSS` (`/proc/PID/status`) before the idle connections open ")
	p("(after the warm-up of the active ones) and at the window's end, the difference divided by the idle connections. ")
	p("Each idle connection echoes one %d-byte message before it counts as open.\n\n", 32)

	p("## Reproduce\n\n")
	p("```sh\ncd tests/bench\n")
	p("go vet ./... && go test ./...              # the client against an in-process reactor server, ~4 s\n")
	p("go run ./cmd/compare -quick                # smoke test: 1 round, 1 s windows, 1,000 idle connections\n")
	p("go run ./cmd/compare -write-docs           # the full run (3 rounds, 5 s windows, ~8 min); rewrites this page\n")
	p("go run ./cmd/compare %s   # this page's run\n", strings.Join(os.Args[1:], " "))
	p("go run ./cmd/compare -servers reactor,reactor-busy,reactor-hop,gnet -workloads pp64,pp512   # the latency features\n")
	p("go run ./cmd/compare -paired -workloads pp64,pp4k,pp512   # also reactor and each peer at the same time (drift-free ratios)\n")
	p("go run ./cmd/compare -h                    # subsets (-workloads, -servers), -rounds, -window, -scale, -busy-poll\n")
	p("```\n\n")
	p("One server by hand:\n\n")
	p("```sh\ncd tests/bench\n")
	p("go build -o /tmp/server ./cmd/server && go build -o /tmp/load ./cmd/load\n")
	p("taskset -c 0 /tmp/server -engine gnet -addr 127.0.0.1:7007 &\n")
	p("taskset -c 1 /tmp/load -addr 127.0.0.1:7007 -mode pingpong -conns 50 -size 64 -server-pid $!   # prints a JSON result\n")
	p("kill %%1\n")
	p("```\n")
	return b.String()
}

// hopWorkers says how many workers reactor-hop runs (cmd/server/hop.go).
const hopWorkers = "GOMAXPROCS worker goroutines (1 when the server is pinned to one CPU)"

// featuresSection writes the variants against plain reactor: what each
// latency feature costs or saves, as measured.
func (rep *report) featuresSection(p func(string, ...any)) {
	p("## Latency features\n\n")
	p("Each feature of reactor measured by a variant that differs from plain reactor in it alone, in the same rounds:\n\n")
	p("- **reactor-busy**: an idle I/O thread busy-polls its poller for `BusyPoll` (%v) before it blocks in the kernel. ", rep.o.busyPollFor())
	p("Plain reactor never busy-polls. Below 1 on p50/p99 is what busy-polling saves; above 1 on CPU per message is what it costs.\n")
	p("- **reactor-hop**: callbacks are no longer handled on the I/O thread: `OnRead` sends the buffer on one channel to ")
	p("%s that call `WriteBuffer` and `Read`, the hop other engines force. ", hopWorkers)
	p("Above 1 on p50/p99 and CPU per message is what reactor's dispatch on the I/O thread saves.\n")
	p("- **reactor-epoll**: the epoll backend (`Backend: BackendEpoll`: readiness, then a `read` and a `write` system call per message) ")
	p("where plain reactor takes io_uring (`BackendAuto`: reads and writes queued on the thread's ring and submitted, ")
	p("with every completion collected, by one `io_uring_enter` per loop turn). Below 1 on msgs/s is what the ring gains.\n\n")
	p("| workload | server |")
	for _, id := range featureMetrics {
		p(" %s |", metrics[id].header)
	}
	for _, id := range featureMetrics {
		p(" %s vs reactor |", metrics[id].header)
	}
	p(" msgs/s over rounds |\n|---|---|%s--:|\n", strings.Repeat("--:|", 2*len(featureMetrics)))
	for _, w := range rep.works {
		for _, s := range append([]string{"reactor"}, rep.ranVariants()...) {
			c := rep.cells[w.name][s]
			row := []string{w.title(), s}
			for _, id := range featureMetrics {
				row = append(row, fmtOrDash(metrics[id].format, c.val[id]))
			}
			for _, id := range featureMetrics {
				r := math.NaN()
				if s != "reactor" {
					r = rep.featureRatio(w, s, id)
				}
				row = append(row, fmtOrDash(fmtRatio, r))
			}
			row = append(row, c.spread())
			p("| %s |\n", strings.Join(row, " | "))
		}
	}
	p("\nA variant's median divided by plain reactor's on the same workload. Above 1 is better for msgs/s; ")
	p("below 1 is better for latency and CPU per message. Compare a ratio with the spread over rounds before reading anything into it.\n\n")
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
