package reactor_test

import (
	"encoding/json"
	"testing"

	"github.com/ioreactor/reactor"
)

// TestBackendTextRoundTrips: a backend goes to JSON by name and comes
// back; an unknown name is refused.
func TestBackendTextRoundTrips(t *testing.T) {
	for _, b := range []reactor.Backend{reactor.BackendAuto, reactor.BackendEpoll, reactor.BackendURing, reactor.BackendIOCP} {
		type holder struct{ Backend reactor.Backend }
		data, err := json.Marshal(holder{b})
		if err != nil {
			t.Fatal(err)
		}
		var out holder
		if err := json.Unmarshal(data, &out); err != nil || out.Backend != b {
			t.Errorf("%s: JSON %s came back as %v, %v", b, data, out.Backend, err)
		}
	}
	var b reactor.Backend
	if err := b.UnmarshalText([]byte("kqueue")); err == nil {
		t.Error("an unknown backend name was accepted")
	}
}
