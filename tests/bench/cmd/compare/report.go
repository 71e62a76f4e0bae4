package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ioreactor/reactor/tests/bench/internal/load"
)

// cell is one server on one workload: the medians over its rounds.
type cell struct {
	runs int      // rounds run
	ok   int      // rounds that succeeded
	errs []string // why the others failed
	// medians over the successful rounds; NaN when none succeeded
	val [metricCount]float64
	// the spread of messages/s over the successful rounds
	msgsMin, msgsMax float64
}

// metricID names a measured quantity.
type metricID int

const (
	mMsgs       metricID = iota // messages/s (stream: 64 KiB chunks/s)
	mMBps                       // MB/s, 10^6 bytes echoed per second
	mP50                        // ns
	mP99                        // ns
	mCPUPerMsg                  // server CPU µs per message
	mServerCPU                  // server CPU, % of one core
	mClientCPU                  // client CPU, % of one core
	mSlowest                    // the slowest connection's share of the mean, %
	mRSSPerConn                 // KiB of server RSS per idle connection
	metricCount
)

// metric says how a quantity is shown and compared.
type metric struct {
	id     metricID
	header string
	higher bool // higher is better
	ratio  bool // reactor's ratio to the best peer is reported
	format func(float64) string
	// applies says whether the workload shows the metric.
	applies func(workload) bool
}

func always(workload) bool { return true }

var metrics = []metric{
	{mMsgs, "msgs/s", true, true, fmtCount, always},
	{mMBps, "MB/s", true, true, fmtMB, always},
	{mP50, "p50", false, true, fmtNanos, always},
	{mP99, "p99", false, true, fmtNanos, always},
	{mCPUPerMsg, "server CPU µs/msg", false, true, fmtMicros, always},
	{mServerCPU, "server CPU", false, false, fmtPercent, always},
	{mClientCPU, "client CPU", false, false, fmtPercent, always},
	{mSlowest, "slowest conn", true, false, fmtPercent, always},
	{mRSSPerConn, "RSS KiB/conn", false, true, fmtKiB, func(w workload) bool { return w.mode == load.Idle }},
}

// values extracts every metric from one run.
func values(r *load.Result, w workload, clkTck int64) [metricCount]float64 {
	var v [metricCount]float64
	cpuSec := float64(r.ServerCPUTicks) / float64(clkTck)
	v[mMsgs] = r.MessagesPerSec()
	v[mMBps] = r.MBPerSec()
	v[mP50] = float64(r.P50)
	v[mP99] = float64(r.P99)
	v[mCPUPerMsg] = math.NaN()
	if r.Messages > 0 && r.ServerCPUTicks >= 0 {
		v[mCPUPerMsg] = cpuSec * 1e6 / float64(r.Messages)
	}
	v[mServerCPU] = 100 * cpuSec / r.Elapsed.Seconds()
	v[mClientCPU] = r.ClientCPUPercent()
	v[mSlowest] = 100 * r.SlowestShare
	v[mRSSPerConn] = math.NaN()
	if w.mode == load.Idle && r.IdleOpen > 0 {
		v[mRSSPerConn] = float64(r.RSSAfterKiB-r.RSSBeforeKiB) / float64(r.IdleOpen)
	}
	return v
}

// report is the whole benchmark's outcome.
type report struct {
	o        options
	m        machine
	works    []workload
	servers  []string
	cells    map[string]map[string]*cell // workload name → server → cell
	elapsed  time.Duration
	failures int
	drivers  []string      // the load client's drivers that ran, sorted
	paired   *pairedReport // -paired, else nil
}

func newReport(o options, m machine, works []workload, servers []string, res []runResult, elapsed time.Duration) *report {
	rep := &report{o: o, m: m, works: works, servers: servers, cells: map[string]map[string]*cell{}, elapsed: elapsed}
	for _, w := range works {
		rep.cells[w.name] = map[string]*cell{}
		for _, s := range servers {
			var per [metricCount][]float64
			c := &cell{}
			for _, rr := range res {
				if rr.Workload != w.name || rr.Server != s {
					continue
				}
				c.runs++
				if rr.Result == nil {
					c.errs = append(c.errs, fmt.Sprintf("round %d: %s", rr.Round, rr.Err))
					rep.failures++
					continue
				}
				c.ok++
				if d := string(rr.Result.Driver); !slices.Contains(rep.drivers, d) {
					rep.drivers = append(rep.drivers, d)
					slices.Sort(rep.drivers)
				}
				v := values(rr.Result, w, m.clkTck)
				for i := range v {
					per[i] = append(per[i], v[i])
				}
			}
			for i := range per {
				c.val[i] = median(per[i])
			}
			c.msgsMin, c.msgsMax = math.NaN(), math.NaN()
			if len(per[mMsgs]) > 0 {
				c.msgsMin, c.msgsMax = slices.Min(per[mMsgs]), slices.Max(per[mMsgs])
			}
			rep.cells[w.name][s] = c
		}
	}
	return rep
}

// numbers is a copy of v without its NaNs.
func numbers(v []float64) []float64 { return slices.DeleteFunc(slices.Clone(v), math.IsNaN) }

// median of the values that are numbers; NaN if there are none.
func median(v []float64) float64 {
	v = numbers(v)
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

// ratio is reactor's value over the best peer's for one metric.
type ratio struct {
	value float64 // NaN when either side is missing
	best  string  // the best peer
}

func (r ratio) String() string {
	if math.IsNaN(r.value) {
		return "–"
	}
	return fmt.Sprintf("%.2f× (%s)", r.value, r.best)
}

// ratioFor compares reactor with the best of the other servers; reactor's
// variants are not peers.
func (rep *report) ratioFor(w workload, mt metric) ratio {
	cells := rep.cells[w.name]
	rc, ok := cells["reactor"]
	if !ok || math.IsNaN(rc.val[mt.id]) {
		return ratio{value: math.NaN()}
	}
	best, bestVal := "", math.NaN()
	for _, s := range rep.servers {
		v := cells[s].val[mt.id]
		if s == "reactor" || isVariant(s) || math.IsNaN(v) {
			continue
		}
		if math.IsNaN(bestVal) || (mt.higher && v > bestVal) || (!mt.higher && v < bestVal) {
			best, bestVal = s, v
		}
	}
	if best == "" || bestVal == 0 {
		return ratio{value: math.NaN()}
	}
	return ratio{value: rc.val[mt.id] / bestVal, best: best}
}

// featureMetrics are the columns of the latency features' comparison.
var featureMetrics = []metricID{mMsgs, mP50, mP99, mCPUPerMsg}

// ranVariants is the variants that were run, in -servers order; none
// without plain reactor to compare them with.
func (rep *report) ranVariants() []string {
	if !slices.Contains(rep.servers, "reactor") {
		return nil
	}
	return slices.DeleteFunc(slices.Clone(rep.servers), func(s string) bool { return !isVariant(s) })
}

// featureRatio is a variant's value over plain reactor's: NaN when either
// is missing.
func (rep *report) featureRatio(w workload, variant string, id metricID) float64 {
	r, v := rep.cells[w.name]["reactor"].val[id], rep.cells[w.name][variant].val[id]
	if math.IsNaN(r) || math.IsNaN(v) || r == 0 {
		return math.NaN()
	}
	return v / r
}

func fmtRatio(v float64) string { return fmt.Sprintf("%.2f×", v) }

// shown is the metrics a workload's table has.
func shown(w workload) []metric {
	var out []metric
	for _, mt := range metrics {
		if mt.applies(w) {
			out = append(out, mt)
		}
	}
	return out
}

// clientDrivers names the load client's drivers that ran.
func (rep *report) clientDrivers() string {
	if len(rep.drivers) == 0 {
		return "no driver (every run failed)"
	}
	return strings.Join(rep.drivers, " and ")
}

// print writes the tables to w.
func (rep *report) print(out io.Writer) {
	fmt.Fprintf(out, "\n%s\n", rep.m.summary())
	fmt.Fprintf(out, "%d round(s), %v warm-up, %v window; medians over rounds; load client on %s; took %v\n",
		rep.o.rounds, rep.o.warmup, rep.o.window, rep.clientDrivers(), rep.elapsed.Round(time.Second))
	for _, w := range rep.works {
		fmt.Fprintf(out, "\n== %s (%s)\n", w.title(), w.name)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		ms := shown(w)
		hdr := []string{"server"}
		for _, mt := range ms {
			hdr = append(hdr, mt.header)
		}
		hdr = append(hdr, "msgs/s range", "ok")
		fmt.Fprintln(tw, strings.Join(hdr, "\t")+"\t")
		for _, s := range rep.servers {
			c := rep.cells[w.name][s]
			row := []string{s}
			for _, mt := range ms {
				row = append(row, fmtOrDash(mt.format, c.val[mt.id]))
			}
			row = append(row, c.spread(), fmt.Sprintf("%d/%d", c.ok, c.runs))
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
		var parts []string
		for _, mt := range ms {
			if mt.ratio {
				parts = append(parts, fmt.Sprintf("%s %v", mt.header, rep.ratioFor(w, mt)))
			}
		}
		fmt.Fprintf(out, "reactor / best peer: %s\n", strings.Join(parts, ", "))
		for _, v := range rep.ranVariants() {
			parts = parts[:0]
			for _, id := range featureMetrics {
				parts = append(parts, fmt.Sprintf("%s %s", metrics[id].header, fmtOrDash(fmtRatio, rep.featureRatio(w, v, id))))
			}
			fmt.Fprintf(out, "%s / reactor: %s\n", v, strings.Join(parts, ", "))
		}
		for _, s := range rep.servers {
			for _, e := range rep.cells[w.name][s].errs {
				fmt.Fprintf(out, "FAILED %s %s\n", s, e)
			}
		}
	}
	fmt.Fprintln(out, "\nRatios: higher is better for msgs/s and MB/s; lower is better for latency, CPU per message and RSS.")
}

func (c *cell) spread() string {
	if math.IsNaN(c.msgsMin) {
		return "–"
	}
	return fmtCount(c.msgsMin) + "–" + fmtCount(c.msgsMax)
}

func fmtOrDash(f func(float64) string, v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return f(v)
}

// fmtCount writes a rate with thousands separators.
func fmtCount(v float64) string { return count(int(math.Round(v))) }

func fmtMB(v float64) string { return fmt.Sprintf("%.1f", v) }

// fmtNanos writes a latency in µs or ms, three significant digits.
func fmtNanos(v float64) string {
	switch {
	case v >= 1e6:
		return sig3(v/1e6) + " ms"
	case v >= 1e3:
		return sig3(v/1e3) + " µs"
	}
	return sig3(v) + " ns"
}

func fmtMicros(v float64) string { return sig3(v) }

func fmtPercent(v float64) string { return fmt.Sprintf("%.0f%%", v) }

func fmtKiB(v float64) string { return fmt.Sprintf("%.1f", v) }

// sig3 writes v with three significant digits (v ≥ 0).
func sig3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// roundDur rounds a latency for a progress line.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= time.Microsecond:
		return d.Round(100 * time.Nanosecond)
	}
	return d
}
