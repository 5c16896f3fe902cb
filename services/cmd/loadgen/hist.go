package main

import (
	"math"
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram in microseconds, in the spirit of
// HdrHistogram: values below 2*subBuckets µs are kept exactly, larger ones in
// buckets whose width is at most 1/subBuckets of their lower bound, so a
// reported percentile is within 0.4% of the true sample value. It needs a
// fixed few tens of KiB however many votes a run sends, unlike a slice of
// every sample. Not safe for concurrent use: each worker owns one and they
// are merged at the end.
type hist struct {
	counts []uint64
	n      uint64
	sum    float64 // µs, for the mean
	min    uint64
	max    uint64
}

const (
	subBucketBits = 8
	subBuckets    = 1 << subBucketBits // 256
	// Values up to 2^40 µs (~12.7 days) are representable; larger ones clamp.
	maxExp     = 40 - subBucketBits
	numBuckets = (maxExp + 2) * subBuckets
)

func newHist() *hist {
	return &hist{counts: make([]uint64, numBuckets), min: math.MaxUint64}
}

// bucketOf maps a value in µs to its bucket index. Index = e*256 + (v>>e),
// where e is 0 for v < 512 (exact buckets) and otherwise the shift that brings
// v into [256, 512).
func bucketOf(v uint64) int {
	e := bits.Len64(v) - (subBucketBits + 1)
	if e < 0 {
		e = 0
	}
	if e > maxExp {
		e = maxExp
		if v>>e >= 2*subBuckets {
			v = (2*subBuckets)<<e - 1
		}
	}
	return e*subBuckets + int(v>>e)
}

// bucketRange returns the smallest and largest µs value mapping to bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < 2*subBuckets {
		return uint64(i), uint64(i)
	}
	e := i/subBuckets - 1
	m := uint64(i - e*subBuckets) // in [256, 512)
	return m << e, (m+1)<<e - 1
}

func (h *hist) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	v := uint64(d / time.Microsecond)
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	if o.n > 0 {
		h.min = min(h.min, o.min)
		h.max = max(h.max, o.max)
	}
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100): the
// smallest recorded value such that at least p% of the samples are <= it,
// approximated by the midpoint of its bucket and clamped to [min, max].
// It returns 0 for an empty histogram.
func (h *hist) percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := nearestRank(p, int(h.n))
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= uint64(rank) {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			v = max(v, h.min)
			v = min(v, h.max)
			return time.Duration(v) * time.Microsecond
		}
	}
	return time.Duration(h.max) * time.Microsecond
}

func (h *hist) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum/float64(h.n)) * time.Microsecond
}

func (h *hist) maxDur() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.max) * time.Microsecond
}

// nearestRank is the 1-based rank of the p-th percentile among n samples:
// ceil(p/100 * n), at least 1 and at most n.
func nearestRank(p float64, n int) int {
	r := int(math.Ceil(p / 100 * float64(n)))
	// Guard against float error pushing e.g. 99/100*100 to 99.00000000000001.
	if r > 1 && float64(r-1) >= p/100*float64(n)-1e-9 {
		r--
	}
	return max(1, min(r, n))
}

// percentileSorted is the exact nearest-rank percentile of an ascending
// slice, used where every sample is kept (end-to-end latencies).
func percentileSorted(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[nearestRank(p, len(sorted))-1]
}
