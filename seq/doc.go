// Package seq numbers the reads and writes a connection issues and hands
// their completions back in issue order.
//
// A connection gives each operation a [Number] from a [Generator] when it
// issues it, under its issue lock. Completions may arrive out of order when
// several I/O threads finish them; the owner stores each one in a [List]
// under its own lock and pops them while the next expected number is there.
//
// # One type from generator to consumer
//
// The worst historic bug in this area was a counter generated as one integer
// type and consumed as another: the comparison broke when the generator's
// value crossed 2^31, and the connection stalled for good. Here the same
// type, [Number], is the Generator's result, the List's key and the List's
// position, so the two ranges cannot drift apart. Numbers wrap at 2^32 and
// compare with serial-number arithmetic (RFC 1982), which stays valid for as
// long as the oldest unreleased operation and the newest issued one are
// fewer than 2^31 apart.
//
// # Concurrency
//
// Nothing in this package locks. A Generator belongs to whoever issues
// operations and a List to whoever releases completions; each is used under
// its owner's lock.
package seq
