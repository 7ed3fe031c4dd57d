package admin

import (
	"testing"

	"certops/reconciler"
)

// TestProofMetrics: the served-state proof shows on /metrics as the last
// result and a count of results.
func TestProofMetrics(t *testing.T) {
	m := NewMetrics()
	steps := []struct {
		name                    string
		proof                   *reconciler.Proof
		verified, mismatches    float64
		verifiedN, mismatchingN float64
	}{
		{"before the first proof", nil, 0, 0, 0, 0},
		{"verified", &reconciler.Proof{Revision: "r1", Verified: true, Probes: 3}, 1, 0, 1, 0},
		{"two names mismatch", &reconciler.Proof{Revision: "r2", Probes: 3, Mismatches: []reconciler.Mismatch{
			{Entity: "a", SNI: "a.example.com", Want: "aa", Got: "bb"},
			{Entity: "a", SNI: "x.example.com", Want: "aa", Got: "no handshake"},
		}}, 0, 2, 1, 1},
		{"verified again", &reconciler.Proof{Revision: "r3", Verified: true, Probes: 1}, 1, 0, 2, 1},
	}
	for _, st := range steps {
		if st.proof != nil {
			m.ObserveProof(*st.proof)
		}
		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"certops_served_verified", nil, st.verified},
			{"certops_served_mismatches", nil, st.mismatches},
			{"certops_served_proofs_total", map[string]string{"result": "verified"}, st.verifiedN},
			{"certops_served_proofs_total", map[string]string{"result": "mismatch"}, st.mismatchingN},
		} {
			if got := counterValue(t, m, c.name, c.labels); got != c.want {
				t.Errorf("%s: %s%v = %v, want %v", st.name, c.name, c.labels, got, c.want)
			}
		}
	}
}

// TestFleetRefusalMetric: a fleet node's refusals are read at every
// scrape; a daemon that is no fleet node exports none.
func TestFleetRefusalMetric(t *testing.T) {
	m := NewMetrics()
	if mf := scrape(t, m.Handler())["certops_fleet_refused_total"]; mf != nil {
		t.Errorf("certops_fleet_refused_total exported before BindFleetRefusals: %v", mf)
	}
	counts := map[string]int64{"untrusted": 0, "digest": 0, "replay": 0}
	m.BindFleetRefusals(func() map[string]int64 { return counts })
	counts["replay"] = 2
	for reason, want := range map[string]float64{"untrusted": 0, "digest": 0, "replay": 2} {
		if got := counterValue(t, m, "certops_fleet_refused_total", map[string]string{"reason": reason}); got != want {
			t.Errorf("certops_fleet_refused_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
}
