package seq_test

import (
	"fmt"
	"testing"

	"github.com/ioreactor/reactor/seq"
)

var sinkNumber seq.Number

func BenchmarkGenerator(b *testing.B) {
	b.ReportAllocs()
	var g seq.Generator
	for b.Loop() {
		sinkNumber = g.Next()
	}
}

// BenchmarkListInOrder is one completion arriving in issue order: one Put
// and one Pop per op.
func BenchmarkListInOrder(b *testing.B) {
	b.ReportAllocs()
	l := seq.NewList[[]byte](0)
	var g seq.Generator
	buf := make([]byte, 16)
	for b.Loop() {
		if err := l.Put(g.Next(), buf); err != nil {
			b.Fatal(err)
		}
		if _, ok := l.Pop(); !ok {
			b.Fatal("Pop found nothing")
		}
	}
}

// BenchmarkListShuffled completes windows of operations in a shuffled
// order, popping whatever is ready after each Put. One op is one item.
func BenchmarkListShuffled(b *testing.B) {
	for _, size := range []int{16, 64} {
		b.Run(fmt.Sprintf("window=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			r := newRand(b)
			// A cycle of precomputed windows keeps math/rand and division
			// out of the loop: order[k] is the k'th completion's number
			// relative to the start of the cycle.
			order := make([]seq.Number, 64*size)
			for w := 0; w < len(order); w += size {
				for k, p := range r.Perm(size) {
					order[w+k] = seq.Number(w + p)
				}
			}
			l := seq.NewList[[]byte](0)
			buf := make([]byte, 16)
			var base seq.Number
			k := 0
			for b.Loop() {
				if err := l.Put(base+order[k], buf); err != nil {
					b.Fatal(err)
				}
				for {
					if _, ok := l.Pop(); !ok {
						break
					}
				}
				if k++; k == len(order) {
					k = 0
					base += seq.Number(len(order))
				}
			}
		})
	}
}
