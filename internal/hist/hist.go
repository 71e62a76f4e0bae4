// Package hist is a latency histogram for the stress binaries and
// benchmarks: Record costs a few instructions and never allocates, so it
// can sit on the path it measures.
//
// # Buckets
//
// Values are durations in nanoseconds. They are counted in log-linear
// buckets, as in HdrHistogram: below 128 ns each nanosecond has its own
// bucket; above, each power-of-two range [2^k, 2^(k+1)) is split into 64
// buckets of equal width 2^(k-6). A bucket's width is therefore at most
// 1/64 of its lower bound, which is the relative error of every answer.
// The top bucket ends at 2^37-1 ns (about 137 s), covering the useful
// range of 1 µs to 100 s with room to spare, in 2048 counters (16 KiB).
//
// # Concurrency
//
// A Histogram is not safe for concurrent use. Give each goroutine its own
// and Merge them once the goroutines are done.
package hist

import (
	"math"
	"math/bits"
	"time"
)

const (
	// subBits is log2 of the buckets per power of two; it sets the
	// relative error to 2^-subBits.
	subBits  = 6
	subCount = 1 << subBits
	// maxBits bounds the recorded values: 2^maxBits-1 ns is about 137 s.
	maxBits = 37
	// maxValue is the largest value counted in its own bucket; larger
	// values are counted in the top bucket.
	maxValue = 1<<maxBits - 1
	// buckets: indexes run to bucketIndex(maxValue).
	buckets = (maxBits-subBits)*subCount + subCount
)

// Histogram counts durations. The zero value is empty and ready to use.
type Histogram struct {
	counts [buckets]uint64
	count  uint64
	sum    uint64 // nanoseconds; overflows only after ~584 years in total
	max    int64
}

// bucketIndex maps a value in [0, maxValue] to its bucket. For v < 128 the
// index is v; above, the top subBits+1 significant bits of v select the
// bucket within its power of two.
func bucketIndex(v uint64) int {
	shift := max(bits.Len64(v)-1-subBits, 0)
	return shift*subCount + int(v>>shift)
}

// bucketUpper is the largest value counted in bucket i: the inverse of
// bucketIndex, rounded up.
func bucketUpper(i int) uint64 {
	shift := max(i/subCount-1, 0)
	lower := uint64(i-shift*subCount) << shift
	return lower + 1<<shift - 1
}

// Record counts d. Negative durations count as 0; durations above about
// 137 s are counted in the top bucket (Max still reports them exactly).
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketIndex(min(uint64(v), maxValue))]++
	h.count++
	h.sum += uint64(v)
	h.max = max(h.max, v)
}

// Merge adds o's counts to h. o is unchanged.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.count += o.count
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Quantile returns an upper bound of the q-quantile (0 ≤ q ≤ 1): the
// upper end of the bucket that holds the value of rank ceil(q·Count()),
// capped at Max. It exceeds that value by less than 1/64 of it (values in
// the top bucket, above about 68 s, are answered with Max). An empty
// histogram returns 0; q is clamped to [0, 1].
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	// The rank of the wanted value, 1-based; the float product is exact
	// enough: a count beyond 2^53 is out of any run's reach.
	rank := max(uint64(math.Ceil(q*float64(h.count))), 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen < rank {
			continue
		}
		if i == buckets-1 {
			// The top bucket also holds the values beyond its range.
			return time.Duration(h.max)
		}
		return time.Duration(min(bucketUpper(i), uint64(h.max)))
	}
	panic("hist: bucket counts add up to less than Count")
}

// Count is the number of durations recorded.
func (h *Histogram) Count() uint64 { return h.count }

// Max is the largest duration recorded, exactly; 0 if none.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the exact mean of the durations recorded (negative ones as 0);
// 0 if none.
func (h *Histogram) Mean() time.Duration {
	if h.count == 0 {
		return 0
	}
	return time.Duration(h.sum / h.count)
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }
