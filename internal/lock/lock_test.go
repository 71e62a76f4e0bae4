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

func TestTryLockFailsWhileHeld(t *testing.T) {
	var m lock.Mutex[classA]
	m.Lock()
	if m.TryLock() {
		t.Fatal("TryLock took a held mutex")
	}
	m.Unlock()
	if !m.TryLock() {
		t.Fatal("TryLock failed on a free mutex")
	}
	m.Unlock()
}

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
