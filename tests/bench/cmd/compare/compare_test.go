package main

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ioreactor/reactor/tests/bench/internal/load"
)

func TestMetricsInIDOrder(t *testing.T) {
	if len(metrics) != int(metricCount) {
		t.Fatalf("%d metrics, %d ids", len(metrics), metricCount)
	}
	for i, mt := range metrics {
		if int(mt.id) != i {
			t.Errorf("metrics[%d] is %s, id %d", i, mt.header, mt.id)
		}
	}
}

func TestMedianSkipsNaN(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{math.NaN(), 5, 1}, 3},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := median([]float64{math.NaN()}); !math.IsNaN(got) {
		t.Errorf("median of no numbers = %v, want NaN", got)
	}
}

// fakeReport is a report over made-up runs of servers: gnet is fastest,
// nbio has the lowest latency, net failed one round; reactor-busy is faster
// than any peer, reactor-hop slower than reactor.
func fakeReport(t *testing.T, servers ...string) *report {
	t.Helper()
	o := options{rounds: 2, window: time.Second, warmup: time.Second, workloads: "all", scale: 1, idleConns: 100, idleActive: 10, inFlight: 1, ioThreads: 1}
	works, err := pickWorkloads(o)
	if err != nil {
		t.Fatal(err)
	}
	m := machine{cpus: 2, model: "test CPU", clkTck: 100}
	perf := map[string]struct {
		msgs uint64
		p99  time.Duration
	}{
		"reactor": {90_000, 2 * time.Millisecond},
		"gnet":    {100_000, 3 * time.Millisecond},
		"nbio":    {80_000, time.Millisecond},
		"net":     {50_000, 9 * time.Millisecond},

		"reactor-busy": {180_000, time.Millisecond / 2},
		"reactor-hop":  {45_000, 3 * time.Millisecond},
	}
	var res []runResult
	for _, w := range works {
		for r := 1; r <= o.rounds; r++ {
			for _, s := range servers {
				rr := runResult{Workload: w.name, Server: s, Round: r}
				if s == "net" && r == 2 {
					rr.Err = "made-up failure"
				} else {
					p := perf[s]
					rr.Result = &load.Result{Mode: w.mode, Elapsed: time.Second, Messages: p.msgs,
						Bytes: int64(p.msgs) * int64(w.size), P50: p.p99 / 2, P99: p.p99,
						ServerCPUTicks: 90, ClientCPU: 800 * time.Millisecond,
						RSSBeforeKiB: 1000, RSSAfterKiB: 1200, IdleOpen: w.idle}
				}
				res = append(res, rr)
			}
		}
	}
	return newReport(o, m, works, servers, res, time.Minute)
}

func TestRatioAgainstBestPeer(t *testing.T) {
	// The variants beat every peer on some metric but are not peers.
	rep := fakeReport(t, slices.Concat(allServers, variants)...)
	w := rep.works[0]
	for _, tc := range []struct {
		id   metricID
		best string
		want float64
	}{
		{mMsgs, "gnet", 0.9},
		{mP99, "nbio", 2},
	} {
		r := rep.ratioFor(w, metrics[tc.id])
		if r.best != tc.best || math.Abs(r.value-tc.want) > 1e-9 {
			t.Errorf("%s: ratio %v, want %.2f× (%s)", metrics[tc.id].header, r, tc.want, tc.best)
		}
	}
	if rep.failures != len(rep.works) {
		t.Errorf("%d failures counted, want %d", rep.failures, len(rep.works))
	}
}

func TestReportsRender(t *testing.T) {
	rep := fakeReport(t, allServers...)
	var out strings.Builder
	rep.print(&out)
	if !strings.Contains(out.String(), "FAILED net round 2: made-up failure") {
		t.Errorf("the failure is not in the table:\n%s", out.String())
	}
	md := rep.markdown()
	for _, want := range []string{"](benchmarks.svg)", "| 50 conns × 64 B ping-pong | reactor | **90,000** |", "0.90× (gnet)", "## Failed runs"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if strings.Contains(md, "Latency features") {
		t.Error("markdown has a latency features section without variants")
	}
	dec := xml.NewDecoder(strings.NewReader(rep.chart()))
	for {
		_, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
	}
}

func TestPickWorkloadsScales(t *testing.T) {
	o := options{workloads: "pp512,idle", scale: 0.01, idleConns: 10000, idleActive: 100}
	works, err := pickWorkloads(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(works) != 2 || works[0].conns != 10 || works[1].conns != 1 || works[1].idle != 100 {
		t.Errorf("scaled workloads: %+v", works)
	}
	if _, err := pickWorkloads(options{workloads: "pp64,nope", scale: 1}); err == nil {
		t.Error("an unknown workload was accepted")
	}
	if _, err := pickServers("reactor,reactor", false); err == nil {
		t.Error("a server named twice was accepted")
	}
	got, err := pickServers("reactor-hop,reactor,gnet", true)
	if want := []string{"reactor-hop", "reactor", "gnet", "reactor-busy", "reactor-epoll"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("-features: servers %q, %v; want %q", got, err, want)
	}
}

func TestLatencyFeatures(t *testing.T) {
	rep := fakeReport(t, "reactor", "reactor-busy", "reactor-hop", "gnet")
	w := rep.works[0]
	if r := rep.featureRatio(w, "reactor-hop", mMsgs); math.Abs(r-0.5) > 1e-9 {
		t.Errorf("reactor-hop msgs/s ratio %v, want 0.5", r)
	}
	var out strings.Builder
	rep.print(&out)
	if want := "reactor-busy / reactor: msgs/s 2.00×, p50 0.25×, p99 0.25×"; !strings.Contains(out.String(), want) {
		t.Errorf("printed report lacks %q:\n%s", want, out.String())
	}
	md := rep.markdown()
	for _, want := range []string{"## Latency features", "| 50 conns × 64 B ping-pong | reactor-hop | 45,000 | 1.50 ms | 3.00 ms |", "BusyPoll: 50µs", "0.90× (gnet)"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
}

// TestPairedRatios: a pair's ratios are taken within the pair, the median
// over pairs is reported with its range, the least favourable peer is the
// one a target is held to, a failed pair is counted and listed, and the
// idle workload is not paired.
func TestPairedRatios(t *testing.T) {
	rep := fakeReport(t, allServers...)
	m := rep.m
	peers := pairPeers(slices.Concat(allServers, variants))
	if !slices.Equal(peers, []string{"gnet", "nbio", "net"}) {
		t.Fatalf("peers %q, want gnet, nbio and net", peers)
	}
	mk := func(msgs uint64, ticks int64) *load.Result {
		return &load.Result{Mode: load.PingPong, Elapsed: time.Second, Messages: msgs, Bytes: int64(msgs) * 64,
			P50: time.Millisecond, P99: 2 * time.Millisecond, ServerCPUTicks: ticks}
	}
	var pairs []pairResult
	for _, w := range rep.works {
		// Rounds in which the machine ran at different speeds: the ratio
		// within each pair stays 1.2× against gnet and 2× against nbio.
		for r, speed := range []uint64{1, 3, 2} {
			pairs = append(pairs,
				pairResult{Workload: w.name, Peer: "gnet", Round: r + 1, Reactor: mk(12_000*speed, 40), Other: mk(10_000*speed, 50)},
				pairResult{Workload: w.name, Peer: "nbio", Round: r + 1, Reactor: mk(20_000*speed, 40), Other: mk(10_000*speed, 40)})
		}
		pairs = append(pairs, pairResult{Workload: w.name, Peer: "net", Round: 1, Err: "made-up failure"})
	}
	pp := newPairedReport(m, rep.works, []string{"gnet", "nbio", "net"}, pairs)
	for _, w := range pp.works {
		if w.mode == load.Idle {
			t.Fatalf("the idle workload was paired")
		}
	}
	w := pp.works[0]
	if v, who := pp.worst(w, mMsgs, true); who != "gnet" || math.Abs(v-1.2) > 1e-9 {
		t.Errorf("least favourable msgs/s ratio %.3f (%s), want 1.20 (gnet)", v, who)
	}
	// CPU per message: gnet 50 ticks for 10,000 against reactor's 40 for
	// 12,000 is 0.67×; nbio 40 for 10,000 against 40 for 20,000 is 0.5×.
	if v, who := pp.worst(w, mCPUPerMsg, false); who != "gnet" || math.Abs(v-(40.0/12)/(50.0/10)) > 1e-9 {
		t.Errorf("least favourable CPU/msg ratio %.3f (%s), want 0.67 (gnet)", v, who)
	}
	if want := len(pp.works); pp.failures != want {
		t.Errorf("%d failed pairs counted, want %d", pp.failures, want)
	}
	rep.paired = pp
	md := rep.markdown()
	for _, want := range []string{"## Paired runs", "| 50 conns × 64 B ping-pong | gnet | 1.20× (1.20–1.20) |", "1.20× (gnet)", "reactor with net, round 1: made-up failure"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	var out strings.Builder
	pp.print(&out)
	if !strings.Contains(out.String(), "2.00× (2.00–2.00)") {
		t.Errorf("printed pairs lack nbio's 2.00×:\n%s", out.String())
	}
}
