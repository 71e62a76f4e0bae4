package sock

import (
	"fmt"
	"time"

	"github.com/ioreactor/reactor/pool"
)

// CloseAll closes every listener, datagram socket and connection registered in env's
// group: listeners at once, connections gracefully; those still open at
// deadline are aborted. It waits until every descriptor is closed and
// every OnClose has run, and reports what is left if that takes more than
// a second past the deadline.
func CloseAll(env *Env, deadline time.Time) error {
	table := env.Group.Table()
	each := func(graceful bool) {
		table.Each(func(h pool.Handler) {
			switch x := h.(type) {
			case *Listener:
				x.Close()
			case *PacketConn:
				x.Close()
			case *Conn:
				if graceful {
					x.Close()
				} else {
					x.Abort()
				}
			}
		})
	}
	each(true)
	if waitEmpty(table, deadline) {
		return nil
	}
	each(false)
	if waitEmpty(table, time.Now().Add(time.Second)) {
		return nil
	}
	return fmt.Errorf("sock: %d sockets still registered after shutdown", table.Len())
}

// waitEmpty polls until the table is empty or the deadline passes. Close
// is asynchronous (teardown runs on each socket's loop), and a shutdown
// is rare enough that polling every millisecond costs nothing.
func waitEmpty(t *pool.Table, deadline time.Time) bool {
	for t.Len() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// Drain closes every listener in env's group, then waits until no stream
// connection is left in it (their peers, or their handlers, closing them)
// or deadline passes, and returns how many are left. Datagram sockets are
// not touched: they have no connections to finish.
func Drain(env *Env, deadline time.Time) int {
	table := env.Group.Table()
	table.Each(func(h pool.Handler) {
		if ln, ok := h.(*Listener); ok {
			ln.Close()
		}
	})
	for {
		n := 0
		table.Each(func(h pool.Handler) {
			if _, ok := h.(*Conn); ok {
				n++
			}
		})
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(drainPoll)
	}
}

// drainPoll is how often Drain counts the connections left: a drain takes
// seconds, and counting walks the whole table.
const drainPoll = 10 * time.Millisecond
