package reconciler

import (
	"testing"

	"certops/plan"
)

func TestMassDeleteGuard(t *testing.T) {
	tests := []struct {
		name         string
		max          float64
		allow        bool
		del, running int
		wantRefused  bool
	}{
		{"half of four", 0, false, 2, 4, false},
		{"three of four", 0, false, 3, 4, true},
		{"all of one", 0, false, 1, 1, true},
		{"all with a 100% limit", 1, false, 4, 4, true},
		{"allowed", 0, true, 4, 4, false},
		{"nothing running", 0, false, 0, 0, false},
		{"a tenth", 0.1, false, 2, 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Options{MaxDelete: tt.max, AllowMassDelete: tt.allow})
			err := r.massDelete(&plan.Plan{Summary: plan.Summary{Delete: tt.del}}, tt.running)
			if (err != nil) != tt.wantRefused {
				t.Errorf("massDelete(%d of %d) = %v, want refused %v", tt.del, tt.running, err, tt.wantRefused)
			}
		})
	}
}
