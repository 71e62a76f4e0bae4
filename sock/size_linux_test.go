package sock

import (
	"testing"
	"unsafe"
)

// TestConnFitsItsSizeClass: an idle connection's memory is mostly its
// Conn, and Go rounds allocations up to a size class (…, 256, 288, …): a
// field that pushes Conn past 256 bytes costs 32 bytes per connection,
// 0.03 KiB of the 0.4 KiB budget per idle connection. Cold state belongs
// in connExtra.
func TestConnFitsItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 256 {
		t.Fatalf("Conn is %d bytes, over the 256-byte size class", n)
	}
}

// TestTrafficCountersOwnACacheLine: each loop's byte counters are written
// for every message; sharing a 64-byte line with another loop's would
// bounce it between cores.
func TestTrafficCountersOwnACacheLine(t *testing.T) {
	if n := unsafe.Sizeof(traffic{}); n != 64 {
		t.Fatalf("traffic is %d bytes, want one 64-byte cache line", n)
	}
}
