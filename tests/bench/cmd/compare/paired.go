package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ioreactor/reactor/tests/bench/internal/load"
)

// Paired runs (-paired): reactor and one peer run at the same time, both
// servers pinned to the server CPU and both clients to the client CPU
// (when the runs are pinned at all: machine.taskset), so that whatever
// the machine does to one it does to the other. The alternating rounds
// compare medians taken minutes apart, and this machine drifts by 15–35%
// in that time; a pair's ratios are taken over the same seconds: both
// clients are given one absolute window start (load.Config.WindowAt), and
// a pair whose windows still started apart fails. Pinned, each server
// then has about half a CPU, so a pair measures which server does more
// with the same share of it, not either one's best rate: the ratios are
// the result, not the rates.
//
// The scheduler shares a CPU among threads, not processes, so a server
// with more runnable threads (Go's net, with a goroutine per connection,
// has several) can take more than half, and its messages/s and latency
// gain by it. CPU time per message is the ratio to read first: it was
// level within 1–2% when two copies of one server were paired by hand
// (docs/performance.md). (Giving each side a cgroup of its own with equal
// cpu.shares was tried: under cgroup v1 two identical gnet pairs split
// the CPUs 69/30.)

// maxWindowOffset is how far apart a pair's two windows may start before
// the pair fails: its ratios would not be over the same seconds.
const maxWindowOffset = 50 * time.Millisecond

// setupEstimate bounds how long a pair's clients take to start and open
// w's connections: both windows start this plus the warm-up after the
// clients are started (load.Config.WindowAt), whichever is faster to set
// up. 2 s, and 1 ms more per connection.
func setupEstimate(w workload) time.Duration {
	return 2*time.Second + time.Duration(w.conns+w.idle)*time.Millisecond
}

// pairResult is one paired run of reactor and a peer.
type pairResult struct {
	Workload string       `json:"workload"`
	Peer     string       `json:"peer"`
	Round    int          `json:"round"`
	Reactor  *load.Result `json:"reactor,omitempty"`
	Other    *load.Result `json:"other,omitempty"`
	// WindowOffset is when reactor's window started less when the peer's
	// did; beyond maxWindowOffset either way the pair failed.
	WindowOffset time.Duration `json:"window_offset_ns"`
	Err          string        `json:"error,omitempty"`
}

// pairPeers are the servers paired with reactor: the peers, not reactor's
// variants.
func pairPeers(servers []string) []string {
	return slices.DeleteFunc(slices.Clone(servers), func(s string) bool { return s == "reactor" || isVariant(s) })
}

// pairedWorkloads are the workloads a pair can run: not the idle one,
// whose figure is the server's RSS, which needs the server alone on the
// machine (and two RSS readings at once say nothing the alternating
// rounds do not).
func pairedWorkloads(works []workload) []workload {
	return slices.DeleteFunc(slices.Clone(works), func(w workload) bool { return w.mode == load.Idle })
}

// runPaired runs each peer against reactor, round by round, the peers'
// order rotated each round and which server starts first alternated.
func runPaired(o options, m machine, b binaries, works []workload, peers []string) []pairResult {
	var out []pairResult
	eachRun(o, "pair ", pairedWorkloads(works), peers, func(w workload, round int, peer string) string {
		pr := runPair(o, m, b, w, peer, round%2 == 0)
		pr.Round = round
		out = append(out, pr)
		if pr.Err != "" {
			return fmt.Sprintf("reactor+%s: FAILED: %s", peer, pr.Err)
		}
		v := pairRatios(pr, w, m)
		return fmt.Sprintf("reactor+%-5s msgs/s %.0f vs %.0f (%.2f×), CPU/msg %.2f×, windows %v apart",
			peer, pr.Reactor.MessagesPerSec(), pr.Other.MessagesPerSec(), v[mMsgs], v[mCPUPerMsg], pr.WindowOffset.Abs().Round(time.Microsecond))
	})
	return out
}

// runPair starts reactor and peer (peer first when peerFirst), drives
// both at once over the same window, and stops both.
func runPair(o options, m machine, b binaries, w workload, peer string, peerFirst bool) pairResult {
	pr := pairResult{Workload: w.name, Peer: peer}
	names := []string{"reactor", peer}
	if peerFirst {
		names[0], names[1] = names[1], names[0]
	}
	var errs []string
	srvs := map[string]*server{}
	for _, name := range names {
		s, err := startServer(o, m, b, name, w)
		if err != nil {
			errs = append(errs, err.Error())
			break
		}
		srvs[name] = s
	}
	if len(errs) == 0 {
		errs = drivePair(o, m, b, w, srvs, names, &pr)
	}
	for _, name := range names {
		s := srvs[name]
		if s == nil {
			continue
		}
		// As in runOne: a server that failed the run fails to stop too,
		// and says so once.
		if err := s.stop(); err != nil && len(errs) == 0 {
			errs = append(errs, fmt.Sprintf("stopping %s: %v", name, err))
		}
	}
	pr.Err = strings.Join(errs, "; ")
	return pr
}

// drivePair runs both clients, each against its server, with one window
// start, and fills pr's results; it returns what went wrong.
func drivePair(o options, m machine, b binaries, w workload, srvs map[string]*server, names []string, pr *pairResult) []string {
	at := time.Now().Add(setupEstimate(w) + o.warmup)
	res := make([]load.Result, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { res[i], errs[i] = drive(o, m, b, w, srvs[name], at) })
	}
	wg.Wait()
	var out []string
	for i, name := range names {
		if errs[i] != nil {
			out = append(out, fmt.Sprintf("%s: %v", name, errs[i]))
		}
	}
	if len(out) > 0 {
		return out
	}
	r, p := &res[0], &res[1]
	if names[0] != "reactor" {
		r, p = p, r
	}
	pr.Reactor, pr.Other = r, p
	pr.WindowOffset = r.WindowStart.Sub(p.WindowStart)
	if pr.WindowOffset.Abs() > maxWindowOffset {
		out = append(out, fmt.Sprintf("the two windows started %v apart, more than %v: set-up took %v (reactor) and %v (%s), %v was allowed",
			pr.WindowOffset.Abs(), maxWindowOffset, r.Setup.Round(time.Millisecond), p.Setup.Round(time.Millisecond), pr.Peer, setupEstimate(w)))
	}
	return out
}

// pairRatios is reactor's value over the peer's for every metric of one
// pair; NaN where either is missing.
func pairRatios(pr pairResult, w workload, m machine) [metricCount]float64 {
	var out [metricCount]float64
	var a, b [metricCount]float64
	if pr.Reactor != nil && pr.Other != nil {
		a, b = values(pr.Reactor, w, m.clkTck), values(pr.Other, w, m.clkTck)
	}
	for i := range out {
		out[i] = math.NaN()
		if pr.Reactor != nil && pr.Other != nil && !math.IsNaN(a[i]) && !math.IsNaN(b[i]) && b[i] != 0 {
			out[i] = a[i] / b[i]
		}
	}
	return out
}

// pairedMetrics are the ratios a pair reports: the latency features'
// four (metrics[id] has each one's header and whether higher is better).
var pairedMetrics = featureMetrics

// pairCell is one workload and peer: the ratios of its pairs.
type pairCell struct {
	ok, runs int
	errs     []string
	ratios   [metricCount][]float64
}

// pairedReport is the paired runs' outcome.
type pairedReport struct {
	works    []workload
	peers    []string
	cells    map[string]map[string]*pairCell // workload → peer
	failures int
	pinned   bool   // servers on CPU 0, clients on CPU 1 (taskset)
	pinNote  string // machine.pinNote
}

func newPairedReport(m machine, works []workload, peers []string, res []pairResult) *pairedReport {
	pp := &pairedReport{works: pairedWorkloads(works), peers: peers, cells: map[string]map[string]*pairCell{},
		pinned: m.taskset != "", pinNote: m.pinNote}
	for _, w := range pp.works {
		pp.cells[w.name] = map[string]*pairCell{}
		for _, peer := range peers {
			c := &pairCell{}
			for _, pr := range res {
				if pr.Workload != w.name || pr.Peer != peer {
					continue
				}
				c.runs++
				if pr.Err != "" {
					c.errs = append(c.errs, fmt.Sprintf("round %d: %s", pr.Round, pr.Err))
					pp.failures++
					continue
				}
				c.ok++
				v := pairRatios(pr, w, m)
				for _, id := range pairedMetrics {
					c.ratios[id] = append(c.ratios[id], v[id])
				}
			}
			pp.cells[w.name][peer] = c
		}
	}
	return pp
}

// worst is, over the peers, the ratio least favourable to reactor (its
// median over the pairs): the figure a target is held to.
func (pp *pairedReport) worst(w workload, id metricID, higher bool) (float64, string) {
	best, who := math.NaN(), ""
	for _, peer := range pp.peers {
		v := median(pp.cells[w.name][peer].ratios[id])
		if math.IsNaN(v) {
			continue
		}
		if math.IsNaN(best) || (higher && v < best) || (!higher && v > best) {
			best, who = v, peer
		}
	}
	return best, who
}

// spread formats a median ratio with its range over the pairs.
func spread(v []float64) string {
	v = numbers(v)
	if len(v) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", median(v), slices.Min(v), slices.Max(v))
}

// placement says where a pair's four processes ran.
func (pp *pairedReport) placement() string {
	if pp.pinned {
		return "servers sharing CPU 0, clients CPU 1"
	}
	return pp.pinNote + ": servers and clients on whatever CPUs the scheduler gave them"
}

// failed lists the failed pairs, one line each (no bullet).
func (pp *pairedReport) failed() []string {
	var out []string
	for _, w := range pp.works {
		for _, peer := range pp.peers {
			for _, e := range pp.cells[w.name][peer].errs {
				out = append(out, fmt.Sprintf("%s, paired: reactor with %s, %s", w.title(), peer, e))
			}
		}
	}
	return out
}

// print writes the paired tables.
func (pp *pairedReport) print(out io.Writer) {
	fmt.Fprintf(out, "\nPaired runs: reactor and one peer at the same time (%s); reactor's value over the peer's, median over the pairs (range)\n", pp.placement())
	for _, w := range pp.works {
		fmt.Fprintf(out, "\n== %s (%s), paired\n", w.title(), w.name)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		hdr := []string{"peer"}
		for _, id := range pairedMetrics {
			hdr = append(hdr, metrics[id].header)
		}
		fmt.Fprintln(tw, strings.Join(append(hdr, "ok"), "\t")+"\t")
		for _, peer := range pp.peers {
			c := pp.cells[w.name][peer]
			row := []string{peer}
			for _, id := range pairedMetrics {
				row = append(row, spread(c.ratios[id]))
			}
			row = append(row, fmt.Sprintf("%d/%d", c.ok, c.runs))
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
		for _, peer := range pp.peers {
			for _, e := range pp.cells[w.name][peer].errs {
				fmt.Fprintf(out, "FAILED reactor+%s %s\n", peer, e)
			}
		}
	}
}

// pairedHeader is a markdown table's header: the text columns named
// first, then a numeric column per paired metric, then the numeric
// columns named last.
func pairedHeader(first, last []string) string {
	names := slices.Concat(first, nil)
	for _, id := range pairedMetrics {
		names = append(names, metrics[id].header)
	}
	names = append(names, last...)
	return "| " + strings.Join(names, " | ") + " |\n|" + strings.Repeat("---|", len(first)) +
		strings.Repeat("--:|", len(names)-len(first)) + "\n"
}

// section writes the paired runs' part of benchmarks.md; failed pairs are
// listed with the failed runs (failed).
func (pp *pairedReport) section(p func(string, ...any)) {
	p("## Paired runs\n\n")
	p("The alternating rounds above compare medians taken minutes apart, and this machine's speed drifts by 15–35%% ")
	p("in that time. In a **paired run** reactor and one peer run at the same time, each driven by its own client, ")
	p("both clients given the same absolute start for their window (a pair whose windows started more than %v apart ", maxWindowOffset)
	p("counts as failed). Whatever the machine does during those seconds it does to both, so the ratio of the two is free of drift. ")
	if pp.pinned {
		p("Both servers were pinned to CPU 0 and both clients to CPU 1, so each server has about half a CPU (and each client ")
		p("half of the other): a pair measures which server does more with the same share, not either one's best rate: ")
		p("read the ratios, not the rates. ")
	} else {
		p("This run was %s: servers and clients ran on whatever CPUs the scheduler gave them, so a server's share ", pp.pinNote)
		p("of the machine was not fixed, and the rates say little: read the ratios. ")
	}
	p("Each cell is reactor's value over the peer's, the median over the pairs, ")
	p("with its range; the first server started alternates between rounds. The scheduler shares a CPU among threads, not ")
	p("processes, so a server with more runnable threads (Go's net runs several) can take more than its share, and its ")
	p("messages/s and latency gain by it. CPU time per message is the ratio to read first: it was level within 1–2%% ")
	p("when two copies of one server were paired by hand (docs/performance.md). ")
	p("The idle workload is not paired: its RSS figure needs a server alone.\n\n")
	p("%s", pairedHeader([]string{"workload", "peer"}, []string{"ok"}))
	for _, w := range pp.works {
		for _, peer := range pp.peers {
			c := pp.cells[w.name][peer]
			p("| %s | %s |", w.title(), peer)
			for _, id := range pairedMetrics {
				p(" %s |", spread(c.ratios[id]))
			}
			p(" %d/%d |\n", c.ok, c.runs)
		}
	}
	p("\nThe least favourable ratio over the peers, per workload:\n\n")
	p("%s", pairedHeader([]string{"workload"}, nil))
	for _, w := range pp.works {
		p("| %s |", w.title())
		for _, id := range pairedMetrics {
			v, who := pp.worst(w, id, metrics[id].higher)
			if math.IsNaN(v) {
				p(" – |")
				continue
			}
			p(" %.2f× (%s) |", v, who)
		}
		p("\n")
	}
	p("\n")
}
