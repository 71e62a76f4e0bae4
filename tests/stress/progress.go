package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progressPeriod is how often the live line is refreshed.
const progressPeriod = 500 * time.Millisecond

// startProgress refreshes a one-line summary on w, rewritten in place with
// \r, until the returned function is called; that function clears the
// line and returns once the refreshing goroutine has exited. A nil w (not
// a terminal) shows nothing.
func startProgress(w io.Writer, t *totals, start time.Time) (stop func()) {
	if w == nil {
		return func() {}
	}
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(progressPeriod)
		defer tick.Stop()
		last, lastBytes, lastMsgs := start, int64(0), int64(0)
		width := 0
		for {
			select {
			case <-quit:
				fmt.Fprintf(w, "\r%s\r", strings.Repeat(" ", width))
				return
			case now := <-tick.C:
				b, m := t.bytes.Load(), t.messages.Load()
				secs := now.Sub(last).Seconds()
				line := fmt.Sprintf("%6.1fs  %9.1f MB/s  %10.0f msg/s",
					now.Sub(start).Seconds(), float64(b-lastBytes)/1e6/secs, float64(m-lastMsgs)/secs)
				width = max(width, len(line))
				fmt.Fprintf(w, "\r%-*s", width, line)
				last, lastBytes, lastMsgs = now, b, m
			}
		}
	}()
	return func() {
		close(quit)
		<-exited
	}
}
