package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches /metrics from h and parses the text format as Prometheus
// does.
func scrape(tb testing.TB, h http.Handler) map[string]*dto.MetricFamily {
	tb.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK {
		tb.Fatalf("GET /metrics = %d, want 200", w.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(w.Body)
	if err != nil {
		tb.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// findMetric returns the sample of family name whose labels include
// labels, or nil.
func findMetric(families map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	mf := families[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// counterValue scrapes m and returns the value of a counter or gauge
// sample, or -1 when it is absent.
func counterValue(tb testing.TB, m *Metrics, name string, labels map[string]string) float64 {
	tb.Helper()
	s := findMetric(scrape(tb, m.Handler()), name, labels)
	switch {
	case s == nil:
		return -1
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	}
	tb.Fatalf("%s%v is neither a counter nor a gauge", name, labels)
	return 0
}
