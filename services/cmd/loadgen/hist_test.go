package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestNearestRank(t *testing.T) {
	cases := []struct {
		p    float64
		n    int
		want int
	}{
		{50, 1, 1}, {99, 1, 1}, {100, 1, 1},
		{50, 2, 1}, {51, 2, 2}, {100, 2, 2},
		{50, 10, 5}, {90, 10, 9}, {99, 10, 10}, {91, 10, 10},
		{99, 100, 99}, {99.9, 1000, 999}, {50, 101, 51},
		{0.0001, 5, 1},
		// 0.29*100 is 28.999999999999996 in floating point, and e.g.
		// 0.07*100 = 7.000000000000001: neither may shift the rank.
		{29, 100, 29}, {7, 100, 7}, {57, 100, 57},
	}
	for _, c := range cases {
		if got := nearestRank(c.p, c.n); got != c.want {
			t.Errorf("nearestRank(%v, %d) = %d, want %d", c.p, c.n, got, c.want)
		}
	}
}

func TestPercentileSorted(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {90, 90 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {1, time.Millisecond}} {
		if got := percentileSorted(s, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentileSorted(nil, 50); got != 0 {
		t.Errorf("empty: %v", got)
	}
}

func TestBucketsAreContiguousAndMonotone(t *testing.T) {
	prevHi := uint64(0)
	for i := 0; i < numBuckets; i++ {
		lo, hi := bucketRange(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if hi < lo {
			t.Fatalf("bucket %d: hi %d < lo %d", i, hi, lo)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d,%d] maps back to %d/%d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= 2*subBuckets && float64(hi-lo+1)/float64(lo) > 1.0/subBuckets+1e-12 {
			t.Fatalf("bucket %d [%d,%d] wider than 1/%d of its value", i, lo, hi, subBuckets)
		}
		prevHi = hi
	}
	if got := bucketOf(1 << 62); got != numBuckets-1 {
		t.Fatalf("huge value maps to %d, want the last bucket %d", got, numBuckets-1)
	}
}

func TestHistPercentilesMatchExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := newHist()
	var exact []time.Duration
	for range 100_000 {
		// Log-normal-ish spread from µs to seconds.
		d := time.Duration(float64(time.Microsecond) * (1 + rng.ExpFloat64()*rng.ExpFloat64()*2000))
		d = d.Truncate(time.Microsecond)
		h.record(d)
		exact = append(exact, d)
	}
	slices.Sort(exact)
	for _, p := range []float64{1, 50, 90, 99, 99.9, 100} {
		want := percentileSorted(exact, p)
		got := h.percentile(p)
		tol := time.Duration(float64(want)/subBuckets) + time.Microsecond
		if diff := got - want; diff > tol || -diff > tol {
			t.Errorf("p%v = %v, exact %v (tolerance %v)", p, got, want, tol)
		}
	}
	if h.maxDur() != exact[len(exact)-1] {
		t.Errorf("max %v, want %v", h.maxDur(), exact[len(exact)-1])
	}
	if h.n != 100_000 {
		t.Errorf("count %d", h.n)
	}
}

func TestHistSmallValuesExact(t *testing.T) {
	h := newHist()
	for i := 1; i <= 100; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	if got := h.percentile(50); got != 50*time.Microsecond {
		t.Errorf("p50 %v", got)
	}
	if got := h.percentile(99); got != 99*time.Microsecond {
		t.Errorf("p99 %v", got)
	}
	if got := h.percentile(100); got != 100*time.Microsecond {
		t.Errorf("p100 %v", got)
	}
	if got := h.mean(); got != 50*time.Microsecond { // 50.5 truncated
		t.Errorf("mean %v", got)
	}
}

func TestHistMergeAndEmpty(t *testing.T) {
	a, b, empty := newHist(), newHist(), newHist()
	if empty.percentile(50) != 0 || empty.maxDur() != 0 || empty.mean() != 0 {
		t.Fatal("empty histogram should report zeros")
	}
	for i := 1; i <= 50; i++ {
		a.record(time.Duration(i) * time.Millisecond)
		b.record(time.Duration(50+i) * time.Millisecond)
	}
	a.merge(b)
	a.merge(empty)
	if a.n != 100 {
		t.Fatalf("n %d", a.n)
	}
	p50 := a.percentile(50)
	if p50 < 49*time.Millisecond || p50 > 51*time.Millisecond {
		t.Errorf("merged p50 %v", p50)
	}
	if a.maxDur() != 100*time.Millisecond || a.min != 1000 {
		t.Errorf("merged max %v min %d", a.maxDur(), a.min)
	}
	// A negative duration (clock step) records as 0, never panics.
	a.record(-time.Second)
	if a.min != 0 {
		t.Errorf("negative not clamped")
	}
}
