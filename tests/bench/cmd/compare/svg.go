package main

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"

	"github.com/ioreactor/reactor/tests/bench/internal/load"
)

// The chart: two panels of grouped bars, one group per workload, one bar
// per server. Plain SVG text, no script, no external font.
const (
	svgWidth   = 1000
	svgLeft    = 80 // room for the y axis labels
	svgRight   = 20
	panelH     = 300 // a panel: title, plot, group labels
	plotTop    = 40  // within a panel
	plotH      = 200
	legendH    = 40
	barGapFrac = 0.15 // of a bar's slot, left empty between bars
)

var serverColors = map[string]string{
	"reactor":       "#1f77b4",
	"reactor-busy":  "#6baed6",
	"reactor-hop":   "#08306b",
	"reactor-epoll": "#9ecae1",
	"gnet":          "#ff7f0e",
	"nbio":          "#2ca02c",
	"net":           "#8c8c8c",
}

// bar is one bar of a group.
type bar struct {
	server string
	value  float64 // NaN: the server failed every round
	label  string
}

// group is one workload's bars.
type group struct {
	title string
	bars  []bar
}

// chart renders the two panels.
func (rep *report) chart() string {
	var pp, all []group
	for _, w := range rep.works {
		gm := group{title: w.title()}
		gp := group{title: w.title()}
		for _, s := range rep.servers {
			c := rep.cells[w.name][s]
			gm.bars = append(gm.bars, bar{s, c.val[mMsgs], fmtOrDash(shortCount, c.val[mMsgs])})
			gp.bars = append(gp.bars, bar{s, c.val[mP99], fmtOrDash(fmtNanos, c.val[mP99])})
		}
		if w.mode == load.PingPong {
			pp = append(pp, gm)
		}
		all = append(all, gp)
	}
	height := legendH + panelH
	if len(pp) > 0 {
		height += panelH
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgWidth, height)
	rep.legend(&b)
	y := legendH
	if len(pp) > 0 {
		panel(&b, y, "Ping-pong messages/s, median of rounds (higher is better)", pp, true)
		y += panelH
	}
	panel(&b, y, "p99 latency, median of rounds (lower is better; each workload scaled to its own largest bar)", all, false)
	b.WriteString("</svg>\n")
	return b.String()
}

func (rep *report) legend(b *strings.Builder) {
	x := svgLeft
	for _, s := range rep.servers {
		fmt.Fprintf(b, `<rect x="%d" y="14" width="14" height="14" fill="%s"/>`, x, serverColors[s])
		fmt.Fprintf(b, `<text x="%d" y="26">%s</text>`+"\n", x+20, esc(s))
		x += 110
	}
}

// panel draws one row of groups at top y. With shared, all groups share a
// y axis from 0 to a round maximum; otherwise each group is scaled to its
// largest bar and the values are read from the labels.
func panel(b *strings.Builder, y int, title string, groups []group, shared bool) {
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", svgLeft, y+20, esc(title))
	base := y + plotTop + plotH // the bars' baseline

	axisMax := 0.0
	for _, g := range groups {
		for _, br := range g.bars {
			if !math.IsNaN(br.value) {
				axisMax = max(axisMax, br.value)
			}
		}
	}
	if shared {
		axisMax = niceCeil(axisMax)
		for i := 0; i <= 4; i++ {
			v := axisMax * float64(i) / 4
			gy := float64(base) - float64(plotH)*float64(i)/4
			fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, svgLeft, gy, svgWidth-svgRight, gy)
			fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", svgLeft-6, gy+4, tickLabel(v))
		}
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", svgLeft, base, svgWidth-svgRight, base)

	slotW := float64(svgWidth-svgLeft-svgRight) / float64(len(groups))
	for gi, g := range groups {
		gx := float64(svgLeft) + slotW*float64(gi)
		scale := axisMax
		if !shared {
			scale = 0
			for _, br := range g.bars {
				if !math.IsNaN(br.value) {
					scale = max(scale, br.value)
				}
			}
		}
		inner := slotW * 0.8
		barSlot := inner / float64(len(g.bars))
		barW := barSlot * (1 - barGapFrac)
		x0 := gx + (slotW-inner)/2
		for bi, br := range g.bars {
			bx := x0 + barSlot*float64(bi)
			cx := bx + barW/2
			if math.IsNaN(br.value) || scale <= 0 {
				fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="10" fill="#b00">failed</text>`+"\n", cx, base-4)
				continue
			}
			h := float64(plotH) * br.value / scale
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`,
				bx, float64(base)-h, barW, h, serverColors[br.server], esc(br.server), esc(br.label))
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n",
				cx, float64(base)-h-4, esc(br.label))
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", gx+slotW/2, base+18, esc(g.title))
	}
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// shortCount writes 123456 as 123k.
func shortCount(v float64) string {
	switch {
	case v >= 1e6:
		return sig3(v/1e6) + "M"
	case v >= 1e3:
		return sig3(v/1e3) + "k"
	}
	return fmt.Sprintf("%.0f", v)
}

// tickLabel writes an axis value without trailing zeros: 50k, 12.5k.
func tickLabel(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func esc(s string) string { return html.EscapeString(s) }
