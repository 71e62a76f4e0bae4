package pool_test

import (
	"sync"
	"testing"

	"github.com/ioreactor/reactor/poller"
	"github.com/ioreactor/reactor/pool"
)

type owner struct {
	reg pool.Registration
	id  int
}

func (o *owner) HandleEvent(*pool.Loop, *poller.Event) {}

func TestTableLookupFindsOwner(t *testing.T) {
	var tab pool.Table
	a, b := &owner{id: 1}, &owner{id: 2}
	ta, tb := tab.Insert(&a.reg, a), tab.Insert(&b.reg, b)
	if ta == tb || ta == 0 || tb == 0 {
		t.Fatalf("tokens %x and %x: want distinct and non-zero", ta, tb)
	}
	if h := tab.Lookup(ta); h != a {
		t.Fatalf("Lookup(a's token) = %v, want a", h)
	}
	if h := tab.Lookup(tb); h != b {
		t.Fatalf("Lookup(b's token) = %v, want b", h)
	}
	if tab.Len() != 2 {
		t.Fatalf("Len = %d, want 2", tab.Len())
	}
}

// TestTableStaleTokenAfterReuse: a slot reused by a new owner does not
// answer to the old owner's token (the generation differs).
func TestTableStaleTokenAfterReuse(t *testing.T) {
	var tab pool.Table
	a := &owner{id: 1}
	old := tab.Insert(&a.reg, a)
	tab.Remove(&a.reg)
	if h := tab.Lookup(old); h != nil {
		t.Fatalf("Lookup of a removed token = %v, want nil", h)
	}
	b := &owner{id: 2}
	tb := tab.Insert(&b.reg, b)
	if uint32(tb) != uint32(old) {
		t.Fatalf("slot not reused (%x then %x): the test needs reuse", old, tb)
	}
	if h := tab.Lookup(old); h != nil {
		t.Fatalf("the old token reaches the slot's new owner %v", h)
	}
	if h := tab.Lookup(tb); h != b {
		t.Fatalf("Lookup(new token) = %v, want b", h)
	}
}

func TestTableRemoveUnknownPanics(t *testing.T) {
	var tab pool.Table
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("removing an unregistered owner did not panic")
		}
	}()
	tab.Remove(&(&owner{}).reg)
}

func TestTableConcurrentInsertLookupRemove(t *testing.T) {
	var tab pool.Table
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				o := &owner{id: i}
				tok := tab.Insert(&o.reg, o)
				if h := tab.Lookup(tok); h != o {
					t.Errorf("Lookup returned %v, want own owner", h)
					return
				}
				tab.Remove(&o.reg)
				if h := tab.Lookup(tok); h != nil {
					t.Errorf("Lookup after Remove returned %v", h)
					return
				}
			}
		}()
	}
	wg.Wait()
	if tab.Len() != 0 {
		t.Fatalf("Len = %d after all removed", tab.Len())
	}
}
