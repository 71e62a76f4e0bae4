package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ioreactor/reactor/tests/bench/internal/load"
)

// Paired runs (-paired): reactor and one peer run at the same time, both
// servers pinned to the server CPU and both clients to the client CPU, so
// that whatever the machine does to one it does to the other. The
// alternating rounds compare medians taken minutes apart, and this
// machine drifts by 15–35% in that time; a pair's ratios are taken over
// the same seconds. Each server then has about half a CPU, so a pair
// measures which server does more with the same share of it, not either
// one's best rate: the ratios are the result, not the rates.
//
// The scheduler shares a CPU among threads, not processes, so a server
// with more runnable threads (Go's net, with a goroutine per connection,
// has several) can take more than half, and its messages/s and latency
// gain by it. CPU time per message does not depend on the share. (Giving
// each side a cgroup of its own with equal cpu.shares was tried: under
// cgroup v1 two identical gnet pairs split the CPUs 69/30.)

// pairResult is one paired run of reactor and a peer.
type pairResult struct {
	Workload string       `json:"workload"`
	Peer     string       `json:"peer"`
	Round    int          `json:"round"`
	Reactor  *load.Result `json:"reactor,omitempty"`
	Other    *load.Result `json:"other,omitempty"`
	Err      string       `json:"error,omitempty"`
}

// pairPeers are the servers paired with reactor: the peers, not reactor's
// variants.
func pairPeers(servers []string) []string {
	return slices.DeleteFunc(slices.Clone(servers), func(s string) bool { return s == "reactor" || isVariant(s) })
}

// pairedWorkloads are the workloads a pair can run: two servers with
// 10,000 idle connections each would need more descriptors than the
// idle workload's own bound, and two RSS readings at once say nothing
// the alternating rounds do not.
func pairedWorkloads(works []workload) []workload {
	return slices.DeleteFunc(slices.Clone(works), func(w workload) bool { return w.mode == load.Idle })
}

// runPaired runs each peer against reactor, round by round, the peers'
// order rotated each round and which server starts first alternated.
func runPaired(o options, m machine, b binaries, works []workload, peers []string) []pairResult {
	works = pairedWorkloads(works)
	var out []pairResult
	total, n := len(works)*o.rounds*len(peers), 0
	for _, w := range works {
		for r := range o.rounds {
			for k := range peers {
				peer := peers[(k+r)%len(peers)]
				n++
				pr := runPair(o, m, b, w, peer, r%2 == 1)
				pr.Round = r + 1
				if pr.Err != "" {
					fmt.Fprintf(os.Stderr, "[pair %d/%d] %s round %d reactor+%s: FAILED: %s\n", n, total, w.name, r+1, peer, pr.Err)
				} else {
					fmt.Fprintf(os.Stderr, "[pair %d/%d] %s round %d reactor+%-5s msgs/s %.0f vs %.0f (%.2f×), CPU/msg %.2f×\n",
						n, total, w.name, r+1, peer, pr.Reactor.MessagesPerSec(), pr.Other.MessagesPerSec(),
						pairRatio(pr, w, m, mMsgs), pairRatio(pr, w, m, mCPUPerMsg))
				}
				out = append(out, pr)
				time.Sleep(settle)
			}
		}
	}
	return out
}

// runPair starts reactor and peer (peer first when peerFirst), drives
// both at once, and stops both.
func runPair(o options, m machine, b binaries, w workload, peer string, peerFirst bool) pairResult {
	pr := pairResult{Workload: w.name, Peer: peer}
	names := []string{"reactor", peer}
	if peerFirst {
		names[0], names[1] = names[1], names[0]
	}
	srvs := map[string]*server{}
	defer func() {
		for _, s := range srvs {
			s.stop()
		}
	}()
	for _, name := range names {
		s, err := startServer(o, m, b, name)
		if err != nil {
			pr.Err = err.Error()
			return pr
		}
		srvs[name] = s
	}
	var wg sync.WaitGroup
	res := map[string]*load.Result{}
	errs := map[string]error{}
	var mu sync.Mutex
	for _, name := range names {
		wg.Go(func() {
			r, err := drive(o, m, b, w, srvs[name])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[name] = err
				return
			}
			res[name] = &r
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		var parts []string
		for _, name := range names {
			if err := errs[name]; err != nil {
				parts = append(parts, fmt.Sprintf("%s: %v", name, err))
			}
		}
		pr.Err = strings.Join(parts, "; ")
		return pr
	}
	pr.Reactor, pr.Other = res["reactor"], res[peer]
	return pr
}

// pairRatio is reactor's value over the peer's for one metric of one
// pair; NaN when either is missing.
func pairRatio(pr pairResult, w workload, m machine, id metricID) float64 {
	if pr.Reactor == nil || pr.Other == nil {
		return math.NaN()
	}
	a, b := values(pr.Reactor, w, m.clkTck)[id], values(pr.Other, w, m.clkTck)[id]
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	return a / b
}

// pairedMetrics are the ratios a pair reports, each with whether higher is
// better for reactor.
var pairedMetrics = []struct {
	id     metricID
	name   string
	higher bool
}{
	{mMsgs, "msgs/s", true},
	{mCPUPerMsg, "server CPU µs/msg", false},
	{mP50, "p50", false},
	{mP99, "p99", false},
}

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
}

func newPairedReport(m machine, works []workload, peers []string, res []pairResult) *pairedReport {
	pp := &pairedReport{works: pairedWorkloads(works), peers: peers, cells: map[string]map[string]*pairCell{}}
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
				for _, pm := range pairedMetrics {
					c.ratios[pm.id] = append(c.ratios[pm.id], pairRatio(pr, w, m, pm.id))
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
	v = slices.DeleteFunc(slices.Clone(v), math.IsNaN)
	if len(v) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", median(v), slices.Min(v), slices.Max(v))
}

// print writes the paired tables.
func (pp *pairedReport) print(out io.Writer) {
	fmt.Fprintf(out, "\nPaired runs: reactor and one peer at the same time (servers sharing CPU 0, clients CPU 1); reactor's value over the peer's, median over the pairs (range)\n")
	for _, w := range pp.works {
		fmt.Fprintf(out, "\n== %s (%s), paired\n", w.title(), w.name)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		hdr := []string{"peer"}
		for _, pm := range pairedMetrics {
			hdr = append(hdr, pm.name)
		}
		fmt.Fprintln(tw, strings.Join(append(hdr, "ok"), "\t")+"\t")
		for _, peer := range pp.peers {
			c := pp.cells[w.name][peer]
			row := []string{peer}
			for _, pm := range pairedMetrics {
				row = append(row, spread(c.ratios[pm.id]))
			}
			row = append(row, fmt.Sprintf("%d/%d", c.ok, c.runs))
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
	}
}

// pairedHeader is a markdown table's header: the text columns named
// first, then a numeric column per paired metric, then the numeric
// columns named last.
func pairedHeader(first, last []string) string {
	names := slices.Concat(first, nil)
	for _, pm := range pairedMetrics {
		names = append(names, pm.name)
	}
	names = append(names, last...)
	return "| " + strings.Join(names, " | ") + " |\n|" + strings.Repeat("---|", len(first)) +
		strings.Repeat("--:|", len(names)-len(first)) + "\n"
}

// section writes the paired runs' part of benchmarks.md.
func (pp *pairedReport) section(p func(string, ...any)) {
	p("## Paired runs\n\n")
	p("The alternating rounds above compare medians taken minutes apart, and this machine's speed drifts by 15–35%% ")
	p("in that time. In a **paired run** reactor and one peer run at the same time: both servers pinned to the server CPU, ")
	p("each driven by its own client, both clients pinned to the client CPU, each for the same window. Whatever the machine ")
	p("does during those seconds it does to both, so the ratio of the two is free of drift. Each server has about half a CPU ")
	p("(and each client half of the other), so a pair measures which server does more with the same share, not either one's ")
	p("best rate: read the ratios, not the rates. Each cell is reactor's value over the peer's, the median over the pairs, ")
	p("with its range; the first server started alternates between rounds. The scheduler shares a CPU among threads, not ")
	p("processes, so a server with more runnable threads (Go's net runs several) can take more than half, and its ")
	p("messages/s and latency gain by it; **CPU time per message does not depend on the share**, and is the ratio to read ")
	p("first (two copies of one server paired measure level within 1–2%%)")
	p(". The idle workload is not paired (its RSS ")
	p("figure needs a server alone, and two sets of 10,000 connections exceed the descriptor limit).\n\n")
	p("%s", pairedHeader([]string{"workload", "peer"}, []string{"ok"}))
	for _, w := range pp.works {
		for _, peer := range pp.peers {
			c := pp.cells[w.name][peer]
			p("| %s | %s |", w.title(), peer)
			for _, pm := range pairedMetrics {
				p(" %s |", spread(c.ratios[pm.id]))
			}
			p(" %d/%d |\n", c.ok, c.runs)
		}
	}
	p("\nThe least favourable ratio over the peers, per workload:\n\n")
	p("%s", pairedHeader([]string{"workload"}, nil))
	for _, w := range pp.works {
		p("| %s |", w.title())
		for _, pm := range pairedMetrics {
			v, who := pp.worst(w, pm.id, pm.higher)
			if math.IsNaN(v) {
				p(" – |")
				continue
			}
			p(" %.2f× (%s) |", v, who)
		}
		p("\n")
	}
	p("\n")
	var failed []string
	for _, w := range pp.works {
		for _, peer := range pp.peers {
			for _, e := range pp.cells[w.name][peer].errs {
				failed = append(failed, fmt.Sprintf("- %s, reactor with %s, %s", w.title(), peer, e))
			}
		}
	}
	if len(failed) > 0 {
		p("Failed pairs:\n\n%s\n\n", strings.Join(failed, "\n"))
	}
}
