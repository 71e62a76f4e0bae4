package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ioreactor/reactor/tests/bench/internal/load"
)

// allServers are the engines cmd/server can run, in the first round's order.
var allServers = []string{"reactor", "gnet", "nbio", "net"}

// variants are reactor with one latency feature changed, each run as a
// server of its own when named in -servers (or by -features): reactor-busy
// busy-polls (Config.BusyPoll), reactor-hop echoes from worker goroutines
// instead of on the I/O thread, reactor-epoll runs on the epoll backend
// where plain reactor takes io_uring (BackendAuto). They are not peers:
// reactor's ratio to the best peer ignores them.
var variants = []string{"reactor-busy", "reactor-hop", "reactor-epoll"}

// defaultBusyPoll is reactor-busy's Config.BusyPoll when -busy-poll is 0.
const defaultBusyPoll = 50 * time.Microsecond

func isVariant(s string) bool { return slices.Contains(variants, s) }

// workload is one shape of traffic.
type workload struct {
	name  string // as -workloads spells it
	mode  load.Mode
	conns int  // connections carrying the measured traffic
	size  int  // message size, or write size when streaming
	idle  int  // idle connections (idle mode)
	udp   bool // ping-pong over connected UDP sockets: each message a datagram
	unix  bool // over Unix-domain stream sockets instead of TCP on loopback
}

// title says what the workload is, with its real counts.
func (w workload) title() string {
	switch w.mode {
	case load.Stream:
		return fmt.Sprintf("%s conns streaming %s writes", count(w.conns), bytesize(w.size))
	case load.Idle:
		return fmt.Sprintf("%s idle + %s active × %s", count(w.idle), count(w.conns), bytesize(w.size))
	}
	if w.udp {
		return fmt.Sprintf("%s UDP sockets × %s datagram ping-pong", count(w.conns), bytesize(w.size))
	}
	if w.unix {
		return fmt.Sprintf("%s unix conns × %s ping-pong", count(w.conns), bytesize(w.size))
	}
	return fmt.Sprintf("%s conns × %s ping-pong", count(w.conns), bytesize(w.size))
}

// baseWorkloads are the workloads at scale 1.
func baseWorkloads(o options) []workload {
	return []workload{
		{name: "pp64", mode: load.PingPong, conns: 50, size: 64},
		{name: "pp4k", mode: load.PingPong, conns: 50, size: 4 << 10},
		{name: "pp512", mode: load.PingPong, conns: 1000, size: 512},
		{name: "stream", mode: load.Stream, conns: 50, size: 64 << 10},
		{name: "idle", mode: load.Idle, conns: o.idleActive, size: 64, idle: o.idleConns},
		// Not issue 4's workloads: datagram and Unix-domain sockets came
		// later.
		{name: "udp64", mode: load.PingPong, conns: 50, size: 64, udp: true},
		{name: "unix64", mode: load.PingPong, conns: 50, size: 64, unix: true},
	}
}

func workloadNames() []string {
	var names []string
	for _, w := range baseWorkloads(options{}) {
		names = append(names, w.name)
	}
	return names
}

// pickWorkloads applies -workloads and -scale.
func pickWorkloads(o options) ([]workload, error) {
	all := baseWorkloads(o)
	want := map[string]bool{}
	if o.workloads != "all" {
		for _, n := range strings.Split(o.workloads, ",") {
			n = strings.TrimSpace(n)
			if !slices.ContainsFunc(all, func(w workload) bool { return w.name == n }) {
				return nil, fmt.Errorf("unknown workload %q (want %s or all)", n, strings.Join(workloadNames(), ","))
			}
			want[n] = true
		}
	}
	scale := func(n int) int {
		if n == 0 {
			return 0
		}
		return max(1, int(math.Round(float64(n)*o.scale)))
	}
	var out []workload
	for _, w := range all {
		if o.workloads != "all" && !want[w.name] {
			continue
		}
		w.conns, w.idle = scale(w.conns), scale(w.idle)
		if w.conns+w.idle == 0 {
			return nil, fmt.Errorf("workload %s has no connections", w.name)
		}
		out = append(out, w)
	}
	return out, nil
}

// pickServers applies -servers, then -features: the variants not named
// yet are added after the others.
func pickServers(list string, features bool) ([]string, error) {
	var out []string
	known := slices.Concat(allServers, variants)
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(known, s) {
			return nil, fmt.Errorf("unknown server %q (want some of %s)", s, strings.Join(known, ","))
		}
		if slices.Contains(out, s) {
			return nil, fmt.Errorf("server %q named twice", s)
		}
		out = append(out, s)
	}
	if features {
		for _, v := range variants {
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// count writes n with thousands separators: 10,000.
func count(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// bytesize writes a size as 64 B, 4 KiB.
func bytesize(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
