// Package metrics publishes an engine's counters through expvar, so that
// a server which serves expvar's /debug/vars (or reads expvar.Get) sees
// them as JSON beside the Go runtime's.
//
// It is a package of its own because importing expvar imports net/http
// and registers a handler on http.DefaultServeMux: the engine itself
// keeps both out of programs that do not ask for them.
package metrics

import (
	"errors"
	"expvar"
	"sync"

	"github.com/ioreactor/reactor"
)

var publishMu sync.Mutex

// ErrNameTaken is returned by Publish when an expvar of that name exists.
var ErrNameTaken = errors.New("metrics: an expvar of that name is already published")

// Publish makes e.Stats() available as the expvar name, taken afresh on
// every read: connections, buffers, bytes, completions per I/O thread,
// blocking work, descriptors, timers and the rest of reactor.Stats.
// expvar cannot unpublish a name, so publish an engine that lives as long
// as the process, or reuse a name through a Func of your own.
func Publish(name string, e *reactor.Engine) error {
	// expvar.Publish panics on a name taken; the check and the publish
	// are one step, so that two Publish calls racing for a name give one
	// of them ErrNameTaken, not a panic.
	publishMu.Lock()
	defer publishMu.Unlock()
	if expvar.Get(name) != nil {
		return ErrNameTaken
	}
	expvar.Publish(name, expvar.Func(func() any { return e.Stats() }))
	return nil
}
