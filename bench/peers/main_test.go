package main

import (
	"testing"
	"time"
)

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

// TestVerdict reads intervals against a bound, at and across its edges.
func TestVerdict(t *testing.T) {
	for _, tt := range []struct {
		lo, hi float64
		want   string
	}{
		{0.990, 1.020, "met"},
		{0.990, 1.030, "met"}, // at the bound is within it
		{1.028, 1.063, "undecided"},
		{1.030, 1.063, "undecided"},
		{1.031, 1.063, "missed"},
		{0.994, 1.066, "undecided"},
	} {
		if got := verdict(tt.lo, tt.hi, 1.03); got != tt.want {
			t.Errorf("verdict(%.3f, %.3f, 1.03) = %s, want %s", tt.lo, tt.hi, got, tt.want)
		}
	}
}

// TestParseGCTrace reads gctrace lines as the runtime package documents
// them, among other lines of a server's log.
func TestParseGCTrace(t *testing.T) {
	log := `{"level":"INFO","msg":"gateway listening"}
gc 1 @0.012s 2%: 0.010+1.2+0.020 ms clock, 0.040+0.30/2.1/4.0+0.080 ms cpu, 4->4->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P
gc 2 @0.530s 1%: 0.015+2.0+0.010 ms clock, 0.030+0/1.5/0.50+0.020 ms cpu, 33->34->26 MB, 58 MB goal, 0 MB stacks, 0 MB globals, 2 P
gc 3 @0.900s 1%: 0.015+2.0+0.010 ms clock, 0.030+0/1.5/0.50+0.020 ms cpu, 33->34->26 MB, 58 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)
scvg: not a cycle
`
	got := parseGCTrace(log)
	// 0.04+0.3+2.1+4.0+0.08 = 6.52, and 0.03+0+1.5+0.5+0.02 = 2.05 twice.
	want := gcTotals{cycles: 3, cpu: 10620 * time.Microsecond}
	if got.cycles != want.cycles || (got.cpu-want.cpu).Abs() > time.Microsecond {
		t.Errorf("parseGCTrace = %+v; want %+v", got, want)
	}
	if g := parseGCTrace("gc 9 @1s 0%: no cpu figures\n"); g.cycles != 9 || g.cpu != 0 {
		t.Errorf("a line without CPU figures: %+v", g)
	}
	if d := want.minus(gcTotals{cycles: 1, cpu: 6520 * time.Microsecond}); d.cycles != 2 || d.cpu != 4100*time.Microsecond {
		t.Errorf("minus = %+v", d)
	}
}
