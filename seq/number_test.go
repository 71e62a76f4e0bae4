package seq_test

import (
	"math"
	"testing"

	"github.com/ioreactor/reactor/seq"
)

func TestBeforeAcrossWrap(t *testing.T) {
	// Each number must come before every later one in this list, and after
	// every earlier one, although the list wraps past the largest Number.
	order := []seq.Number{
		math.MaxUint32 - 1, math.MaxUint32, 0, 1,
	}
	for i, n := range order {
		for j, m := range order {
			if got, want := n.Before(m), i < j; got != want {
				t.Errorf("%d.Before(%d) = %v, want %v", n, m, got, want)
			}
		}
	}
}

func TestBeforeFarApart(t *testing.T) {
	cases := []struct {
		n, m seq.Number
		want bool
	}{
		{0, 1<<31 - 1, true},
		{1<<31 - 1, 0, false},
		{1, 1 << 31, true},
		{0, 1<<31 + 1, false}, // 0 is 2^31-1 after 2^31+1 modulo 2^32
		{1<<31 + 1, 0, true},
		{math.MaxUint32, 1<<31 - 2, true},
	}
	for _, c := range cases {
		if got := c.n.Before(c.m); got != c.want {
			t.Errorf("%d.Before(%d) = %v, want %v", c.n, c.m, got, c.want)
		}
	}
}

func TestNextWraps(t *testing.T) {
	if got := seq.Number(math.MaxUint32).Next(); got != 0 {
		t.Errorf("MaxUint32.Next() = %d, want 0", got)
	}
	if got := seq.Number(41).Next(); got != 42 {
		t.Errorf("41.Next() = %d, want 42", got)
	}
}

func TestDistance(t *testing.T) {
	cases := []struct {
		n, m seq.Number
		want uint32
	}{
		{5, 5, 0},
		{5, 9, 4},
		{9, 5, math.MaxUint32 - 3},
		{math.MaxUint32, 0, 1},
		{math.MaxUint32 - 1000, 1000, 2001},
		{0, math.MaxUint32, math.MaxUint32},
	}
	for _, c := range cases {
		got := c.n.Distance(c.m)
		if got != c.want {
			t.Errorf("%d.Distance(%d) = %d, want %d", c.n, c.m, got, c.want)
		}
		if c.n+seq.Number(got) != c.m {
			t.Errorf("%d + %d.Distance(%d) != %d", c.n, c.n, c.m, c.m)
		}
	}
}
