package hist_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ioreactor/reactor/internal/hist"
)

// relErr is the relative error the package promises.
const relErr = 1.0 / 64

// exactQuantile is the value of rank ceil(q·n) in sorted, the definition
// Quantile approximates.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := max(int(math.Ceil(q*float64(len(sorted)))), 1)
	return sorted[rank-1]
}

// checkQuantiles records values and checks each quantile against the exact
// one: never below it, above it by at most relErr of it.
func checkQuantiles(t *testing.T, values []time.Duration) {
	t.Helper()
	var h hist.Histogram
	for _, v := range values {
		h.Record(v)
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	for _, q := range []float64{0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1} {
		want := exactQuantile(sorted, q)
		got := h.Quantile(q)
		if got < want || float64(got-want) > relErr*float64(want) {
			t.Errorf("Quantile(%v) = %v, exact %v: outside [exact, exact·(1+1/64)]", q, got, want)
		}
	}
}

func TestQuantileOfKnownDistributions(t *testing.T) {
	const n = 200_000
	r := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() time.Duration{
		"uniform 1µs-100ms": func() time.Duration {
			return time.Microsecond + time.Duration(r.Int64N(int64(100*time.Millisecond)))
		},
		"exponential mean 1ms": func() time.Duration {
			return time.Duration(r.ExpFloat64() * float64(time.Millisecond))
		},
		"log-uniform 1µs-100s": func() time.Duration {
			return time.Duration(math.Exp(r.Float64()*math.Log(1e8)) * float64(time.Microsecond))
		},
		"normal 50µs±5µs": func() time.Duration {
			return time.Duration(max(50e3+5e3*r.NormFloat64(), 0))
		},
		"constant 3ms": func() time.Duration { return 3 * time.Millisecond },
	}
	for name, next := range dists {
		t.Run(name, func(t *testing.T) {
			values := make([]time.Duration, n)
			for i := range values {
				values[i] = next()
			}
			checkQuantiles(t, values)
		})
	}
}

// Values just around every power of two hit the first and last sub-bucket
// of each range, where an off-by-one in the bucket arithmetic would show.
func TestQuantileAtPowerOfTwoEdges(t *testing.T) {
	for k := range 37 {
		p := time.Duration(1) << k
		for _, v := range []time.Duration{p - 1, p, p + 1, p + p/64, p + p/64 - 1} {
			// A second, far larger value keeps Quantile(0.5) from being
			// capped by Max, so it shows the bucket's upper end.
			var h hist.Histogram
			h.Record(v)
			h.Record(100 * time.Second)
			got := h.Quantile(0.5)
			if got < v || float64(got-v) > relErr*float64(v) {
				t.Errorf("value %d ns: Quantile(0.5) = %d ns, want within [v, v·(1+1/64)]", v, got)
			}
		}
	}
}

func TestQuantileOfEmptyIsZero(t *testing.T) {
	var h hist.Histogram
	if got := h.Quantile(0.99); got != 0 {
		t.Fatalf("empty Quantile(0.99) = %v, want 0", got)
	}
	if h.Count() != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatalf("empty histogram: Count %d Max %v Mean %v, want zeros", h.Count(), h.Max(), h.Mean())
	}
}

func TestMaxAndMeanAreExact(t *testing.T) {
	var h hist.Histogram
	for _, v := range []time.Duration{1001, 2003, 3005} {
		h.Record(v)
	}
	if h.Max() != 3005 || h.Mean() != 2003 || h.Count() != 3 {
		t.Fatalf("Max %d Mean %d Count %d, want 3005 2003 3", h.Max(), h.Mean(), h.Count())
	}
}

func TestOutOfRangeValuesAreClamped(t *testing.T) {
	var h hist.Histogram
	h.Record(-time.Second)
	if got := h.Quantile(1); got != 0 {
		t.Errorf("after a negative value, Quantile(1) = %v, want 0", got)
	}
	h.Record(time.Hour)
	if got, max := h.Quantile(1), h.Max(); got != time.Hour || max != time.Hour {
		t.Errorf("after 1h, Quantile(1) = %v and Max = %v, want 1h", got, max)
	}
}

func TestMergeEqualsRecordingIntoOne(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var a, b, all hist.Histogram
	for i := range 10_000 {
		v := time.Duration(r.ExpFloat64() * float64(time.Millisecond))
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(&b)
	if a != all {
		t.Fatalf("merged: Count %d Max %v Mean %v; recorded into one: Count %d Max %v Mean %v",
			a.Count(), a.Max(), a.Mean(), all.Count(), all.Max(), all.Mean())
	}
	if b.Count() == 0 {
		t.Fatal("Merge emptied its argument")
	}
}

func TestResetEmpties(t *testing.T) {
	var h hist.Histogram
	h.Record(time.Millisecond)
	h.Reset()
	if h != (hist.Histogram{}) {
		t.Fatal("Reset left counts behind")
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage counters change allocation counts")
	}
	h := new(hist.Histogram)
	v := time.Microsecond
	allocs := testing.AllocsPerRun(1000, func() {
		h.Record(v)
		v = (v*3/2 + 1) % time.Minute
	})
	if allocs != 0 {
		t.Fatalf("Record allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkRecord(b *testing.B) {
	// Precomputed values spread over the range, so the branch predictor
	// does not see one bucket only.
	r := rand.New(rand.NewPCG(5, 6))
	values := make([]time.Duration, 1024)
	for i := range values {
		values[i] = time.Duration(math.Exp(r.Float64()*math.Log(1e8)) * float64(time.Microsecond))
	}
	var h hist.Histogram
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.Record(values[i&1023])
		i++
	}
}
