package pool_test

import (
	"testing"

	"github.com/ioreactor/reactor/pool"
)

func BenchmarkBufferGetRelease(b *testing.B) {
	p := pool.NewBuffers(0)
	p.Get().Release()
	b.ReportAllocs()
	for b.Loop() {
		p.Get().Release()
	}
}

func BenchmarkBufferGetReleaseParallel(b *testing.B) {
	p := pool.NewBuffers(0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Get().Release()
		}
	})
}

func BenchmarkChainFrom64K(b *testing.B) {
	p := pool.NewBuffers(0)
	data := make([]byte, 64<<10)
	pool.ChainFrom(p, data).Release()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		pool.ChainFrom(p, data).Release()
	}
}
