package main

import "testing"

// TestMedianInterval checks the order statistics the interval takes for
// the numbers of rounds peers.sh runs (coverage from the binomial
// distribution with p = 1/2: 1 - 2 P(X <= k-1)).
func TestMedianInterval(t *testing.T) {
	seq := func(n int) []float64 {
		r := make([]float64, n)
		for i := range r {
			r[i] = float64(n - i) // reversed: the interval sorts
		}
		return r
	}
	tests := []struct {
		n      int
		lo, hi float64 // the k-th smallest and largest of 1..n
		ok     bool
	}{
		{5, 0, 0, false}, // the widest interval, min to max, covers 93.75%
		{6, 1, 6, true},  // 96.9%
		{8, 1, 8, true},  // 99.2%; the 2nd values would cover 93.0%
		{10, 2, 9, true}, // 97.9%
		{20, 6, 15, true},
	}
	for _, tt := range tests {
		lo, hi, ok := medianInterval(seq(tt.n))
		if ok != tt.ok || lo != tt.lo || hi != tt.hi {
			t.Errorf("medianInterval(1..%d) = %v, %v, %v; want %v, %v, %v", tt.n, lo, hi, ok, tt.lo, tt.hi, tt.ok)
		}
	}
}
