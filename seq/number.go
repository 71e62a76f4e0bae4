package seq

// Number is a sequence number. It wraps around at 2^32; comparisons are
// modular (serial-number arithmetic, RFC 1982 style), valid while two
// numbers are less than 2^31 apart.
type Number uint32

// Next returns n+1, wrapping from the largest Number to 0.
func (n Number) Next() Number { return n + 1 }

// Before reports whether n comes before m. Across the wrap the largest
// Number comes before 0. Numbers exactly 2^31 apart are each before the
// other: RFC 1982 leaves that case undefined, and List never relies on it.
func (n Number) Before(m Number) bool { return int32(n-m) < 0 }

// Distance returns how far m is after n, modulo 2^32: n + Distance(m) == m.
func (n Number) Distance(m Number) uint32 { return uint32(m - n) }
