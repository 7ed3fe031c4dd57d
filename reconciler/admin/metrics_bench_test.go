package admin

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"certops/gateway"
	"certops/plan"
	"certops/reconciler"
)

// BenchmarkObserveHandshake measures the metrics hook the gateway calls on
// every handshake.
func BenchmarkObserveHandshake(b *testing.B) {
	m := NewMetrics()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveHandshake(gateway.HandshakeOK)
		}
	})
}

// BenchmarkScrape10k measures a /metrics scrape of a daemon serving
// 10,000 entities (one not-after series each).
func BenchmarkScrape10k(b *testing.B) {
	rec := &fakeRec{status: &reconciler.Status{Applied: &reconciler.Revision{ID: "abc", Time: time.Now()}}}
	for i := range 10000 {
		rec.entities = append(rec.entities, plan.EntityInfo{Name: fmt.Sprintf("entity-%05d", i), Type: "server",
			Chains: []plan.ChainInfo{{NotAfter: time.Now().Add(time.Hour)}}})
	}
	s := New(Options{Reconciler: rec})
	h := s.Handler()
	var size int
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		size = w.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}

// BenchmarkScrape10kPacked is BenchmarkScrape10k with the descriptions
// packed, as the daemon's reconciler gives them (Describer).
func BenchmarkScrape10kPacked(b *testing.B) {
	rec := &fakeRec{status: &reconciler.Status{Applied: &reconciler.Revision{ID: "abc", Time: time.Now()}}}
	for i := range 10000 {
		rec.entities = append(rec.entities, plan.EntityInfo{Name: fmt.Sprintf("entity-%05d", i), Type: "server",
			Chains: []plan.ChainInfo{{NotAfter: time.Now().Add(time.Hour)}}})
	}
	set := plan.NewSet(rec.entities)
	s := New(Options{Reconciler: fixedSet{rec, set}})
	h := s.Handler()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/metrics", nil))
	}
}

// fixedSet is a Describer with a set packed once, as the reconciler's.
type fixedSet struct {
	*fakeRec
	set *plan.Set
}

func (f fixedSet) Descriptions() *plan.Set { return f.set }
