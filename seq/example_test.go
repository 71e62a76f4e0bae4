package seq_test

import (
	"fmt"

	"github.com/ioreactor/reactor/seq"
)

// A connection numbers its operations as it issues them and releases their
// completions in that order, whatever order the I/O threads finish them in.
func Example() {
	gen := seq.NewGenerator(4294967293) // three before the wrap
	done := seq.NewList[string](gen.Peek())

	read := gen.Next()
	write := gen.Next()
	close := gen.Next()

	// The completions arrive out of order.
	for _, c := range []struct {
		n    seq.Number
		what string
	}{{close, "close"}, {read, "read"}, {write, "write"}} {
		if err := done.Put(c.n, c.what); err != nil {
			fmt.Println(err)
			return
		}
		for {
			what, ok := done.Pop()
			if !ok {
				break
			}
			fmt.Println("released", what)
		}
	}
	fmt.Println("next expected:", done.Expected())
	// Output:
	// released read
	// released write
	// released close
	// next expected: 0
}

func ExampleList_Put() {
	l := seq.NewList[string](10)
	fmt.Println(l.Put(10, "first"))
	fmt.Println(l.Put(10, "again"))
	l.Pop()
	fmt.Println(l.Put(10, "late"))
	// Expected is now 11. No connection has MaxAhead operations in flight,
	// so a number that far past it is a bug and is refused.
	fmt.Println(l.Put(11+seq.MaxAhead, "runaway"))
	// Output:
	// <nil>
	// seq: duplicate sequence number
	// seq: duplicate sequence number
	// seq: sequence number too far ahead
}

func ExampleNumber_Before() {
	last := seq.Number(4294967295)
	fmt.Println(last.Before(0), seq.Number(0).Before(last))
	fmt.Println(last.Distance(2))
	// Output:
	// true false
	// 3
}
