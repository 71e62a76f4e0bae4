package lock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/ioreactor/reactor/internal/lock"
)

type (
	classA struct{}
	classB struct{}
	classC struct{}
)

func TestCondWaitsOnMutex(t *testing.T) {
	var (
		m    lock.Mutex[classA]
		cond = sync.Cond{L: &m}
		done bool
	)
	go func() {
		time.Sleep(time.Millisecond)
		m.Lock()
		done = true
		cond.Signal()
		m.Unlock()
	}()
	m.Lock()
	for !done {
		cond.Wait()
	}
	m.Unlock()
}

func BenchmarkLockUnlock(b *testing.B) {
	var m lock.Mutex[classA]
	for b.Loop() {
		m.Lock()
		m.Unlock()
	}
}

// BenchmarkSyncMutex is BenchmarkLockUnlock's baseline.
func BenchmarkSyncMutex(b *testing.B) {
	var m sync.Mutex
	for b.Loop() {
		m.Lock()
		m.Unlock()
	}
}
