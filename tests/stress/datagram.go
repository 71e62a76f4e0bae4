package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ioreactor/reactor/internal/hist"
)

// Datagram flows (-udp): each is a UDP socket of Go's net that sends
// numbered datagrams of random size to the engine's datagram echo, at
// most -udp-window unanswered, and checks each answer whole. UDP may drop
// a datagram, and on loopback it does so only when a receive buffer is
// full, which the kernel counts (/proc/net/snmp, Udp RcvbufErrors): a
// datagram that never came back counts as lost after lossTimeout, and a
// run that lost more than the kernel dropped fails, as does a datagram
// answered twice or changed.

// lossTimeout is how long an unanswered datagram is waited for.
const lossTimeout = time.Second

// lateHorizon is how long a datagram counted lost is remembered, so that
// an answer to it counts as late and not as a duplicate. On loopback a
// datagram is answered within milliseconds or dropped, so past this an
// answer is a repeat; forgetting older losses keeps a long run with a
// lossy kernel from growing the set for ever.
const lateHorizon = 10 * lossTimeout

// datagramHeader: the flow (4 bytes) and the datagram's number (8).
const datagramHeader = 12

// DatagramReport is the datagram flows' part of the report.
type DatagramReport struct {
	Flows      int     `json:"flows"`
	Sent       uint64  `json:"sent"`
	Echoed     uint64  `json:"echoed"` // answered whole, once
	Lost       uint64  `json:"lost"`   // never answered within lossTimeout
	Late       uint64  `json:"late"`   // answered after being counted lost
	Duplicates uint64  `json:"duplicates"`
	Corrupt    uint64  `json:"corrupt"` // an answer that matches no datagram sent
	PerSec     float64 `json:"per_sec"` // echoed per second
	// KernelDrops is how many datagrams the system's receive buffers
	// dropped during the run (nil where it cannot be read).
	KernelDrops *uint64  `json:"kernel_drops"`
	Latency     Latency  `json:"latency"`
	Errors      []string `json:"errors"`
}

// datagramFlow drives one UDP socket.
type datagramFlow struct {
	id   int
	conn *net.UDPConn
	cfg  *Config
	pat  []byte

	tokens chan struct{} // one per datagram that may be sent now (the window)

	mu          sync.Mutex
	outstanding map[uint64]time.Time // sent, not yet answered or counted lost
	lost        map[uint64]time.Time // counted lost, and when: a later answer is late, not corrupt
	sent        uint64
	echoed      uint64
	nlost       uint64
	late        uint64
	duplicates  uint64
	corrupt     uint64
	err         error
	hist        hist.Histogram
}

// datagramSize is the size of datagram seq of flow id: from the header's
// size up to max, derived from both, so the reader knows it.
func datagramSize(cfg *Config, id int, seq uint64) int {
	r := rand.New(rand.NewPCG(cfg.Seed^uint64(id)<<32, seq))
	return datagramHeader + r.IntN(cfg.UDPMaxSize-datagramHeader+1)
}

// fillDatagram writes datagram seq of flow id into b and returns it.
func (f *datagramFlow) fillDatagram(b []byte, seq uint64) []byte {
	n := datagramSize(f.cfg, f.id, seq)
	b = b[:n]
	binary.LittleEndian.PutUint32(b, uint32(f.id))
	binary.LittleEndian.PutUint64(b[4:], seq)
	off := int((seq*7 + uint64(f.id)) % patternPeriod)
	copy(b[datagramHeader:], f.pat[off:][:n-datagramHeader])
	return b
}

// runDatagrams opens the flows to addr and runs them until stop, then
// waits for the answers still due, for at most the shorter of drain and two
// loss timeouts. It fills rep.
func runDatagrams(cfg *Config, addr netip.AddrPort, stop <-chan struct{}, drain time.Duration, rep *DatagramReport, total *atomic.Int64) {
	pat := newPattern(cfg.UDPMaxSize)
	var flows []*datagramFlow
	for i := range cfg.UDPFlows {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("flow %d: %v", i, err))
			continue
		}
		f := &datagramFlow{id: i, conn: c, cfg: cfg, pat: pat, tokens: make(chan struct{}, cfg.UDPWindow),
			outstanding: map[uint64]time.Time{}, lost: map[uint64]time.Time{}}
		for range cfg.UDPWindow {
			f.tokens <- struct{}{}
		}
		flows = append(flows, f)
	}
	rep.Flows = len(flows)
	var wg sync.WaitGroup
	for _, f := range flows {
		wg.Go(func() { f.write(stop) })
		wg.Go(func() { f.read(stop, drain, total) })
	}
	wg.Wait()
	var h hist.Histogram
	for _, f := range flows {
		f.conn.Close()
		rep.Sent += f.sent
		rep.Echoed += f.echoed
		rep.Lost += f.nlost
		rep.Late += f.late
		rep.Duplicates += f.duplicates
		rep.Corrupt += f.corrupt
		if f.err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("flow %d: %v", f.id, f.err))
		}
		h.Merge(&f.hist)
	}
	rep.Latency = Latency{P50: int64(h.Quantile(0.5)), P99: int64(h.Quantile(0.99)), P999: int64(h.Quantile(0.999)),
		Max: int64(h.Max()), Mean: int64(h.Mean())}
}

// write sends datagrams while the window has room, until stop.
func (f *datagramFlow) write(stop <-chan struct{}) {
	buf := make([]byte, f.cfg.UDPMaxSize)
	tick := time.NewTicker(lossTimeout / 4)
	defer tick.Stop()
	var seq uint64
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			f.expire(time.Now())
			continue
		case <-f.tokens:
		}
		d := f.fillDatagram(buf, seq)
		f.mu.Lock()
		f.outstanding[seq] = time.Now()
		f.sent++
		f.mu.Unlock()
		if _, err := f.conn.Write(d); err != nil {
			f.mu.Lock()
			f.err = fmt.Errorf("send %d: %w", seq, err)
			f.mu.Unlock()
			return
		}
		seq++
	}
}

// expire counts as lost what waited past lossTimeout, gives its window
// room back, and forgets losses older than lateHorizon.
func (f *datagramFlow) expire(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for seq, at := range f.outstanding {
		if now.Sub(at) > lossTimeout {
			delete(f.outstanding, seq)
			f.lost[seq] = now
			f.nlost++
			f.tokens <- struct{}{}
		}
	}
	for seq, at := range f.lost {
		if now.Sub(at) > lateHorizon {
			delete(f.lost, seq)
		}
	}
}

// read checks answers until stop, and after it until nothing is due or
// the drain bound passes.
func (f *datagramFlow) read(stop <-chan struct{}, drain time.Duration, total *atomic.Int64) {
	buf := make([]byte, f.cfg.UDPMaxSize+1)
	want := make([]byte, f.cfg.UDPMaxSize)
	var drainBy time.Time
	for {
		if drainBy.IsZero() {
			select {
			case <-stop:
				drainBy = time.Now().Add(min(drain, 2*lossTimeout))
			default:
			}
		}
		if !drainBy.IsZero() {
			f.mu.Lock()
			due := len(f.outstanding)
			f.mu.Unlock()
			if due == 0 || time.Now().After(drainBy) {
				f.expire(time.Now().Add(lossTimeout + 1)) // what is still due is lost
				return
			}
		}
		f.conn.SetReadDeadline(time.Now().Add(lossTimeout / 4))
		n, err := f.conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				f.expire(time.Now())
				continue
			}
			f.mu.Lock()
			f.err = fmt.Errorf("receive: %w", err)
			f.mu.Unlock()
			return
		}
		f.answer(buf[:n], want, total)
	}
}

// answer checks one answer against the datagram it claims to be.
func (f *datagramFlow) answer(got, want []byte, total *atomic.Int64) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(got) < datagramHeader || int(binary.LittleEndian.Uint32(got)) != f.id {
		f.corrupt++
		return
	}
	seq := binary.LittleEndian.Uint64(got[4:])
	if string(got) != string(f.fillDatagram(want, seq)) {
		f.corrupt++
		return
	}
	at, ok := f.outstanding[seq]
	switch {
	case ok:
		delete(f.outstanding, seq)
		f.echoed++
		f.hist.Record(now.Sub(at))
		total.Add(1)
		f.tokens <- struct{}{}
	case !f.lost[seq].IsZero():
		delete(f.lost, seq)
		f.late++
	case seq < f.sent:
		f.duplicates++
	default:
		f.corrupt++ // a number never sent
	}
}
