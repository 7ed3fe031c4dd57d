package admin

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"certops/gateway"
	"certops/reconciler"
)

// Metrics holds the Prometheus metrics of the daemon (DESIGN.md 5) on a
// private registry, with the Go and process collectors. Events are counted
// through its Observe methods, which the daemon hands to the gateway,
// reconciler and secret store as hooks; the state gauges (applied
// revision, entities, certificate expiry) are read from the reconciler at
// every scrape, so an entity that is gone leaves no stale series. All
// methods are safe for concurrent use.
type Metrics struct {
	reg        *prometheus.Registry
	reconciles *prometheus.CounterVec
	durations  *prometheus.HistogramVec
	handshakes *prometheus.CounterVec
	// handshakeBy holds the counter of each known handshake result, so
	// the per-handshake hook skips the label lookup; read-only after
	// NewMetrics.
	handshakeBy   map[gateway.HandshakeResult]prometheus.Counter
	secretFetches *prometheus.CounterVec
	webhooks      *prometheus.CounterVec
	state         *stateCollector
	// The served-state proof (DESIGN.md 9): the last result, and a count
	// of results.
	servedVerified   prometheus.Gauge
	servedMismatches prometheus.Gauge
	proofs           *prometheus.CounterVec
	refusals         *refusalCollector
}

// NewMetrics returns the daemon's metrics, registered on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certops_reconcile_total",
			Help: "Reconcile runs by result: applied, unchanged, stalled (invalid revision) or failed (retryable).",
		}, []string{"result"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "certops_reconcile_duration_seconds",
			Help:    "Duration of the phases of reconcile runs.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"phase"}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certops_tls_handshakes_total",
			Help: "TLS handshakes of the gateway by result.",
		}, []string{"result"}),
		secretFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certops_secret_fetch_total",
			Help: "Secret reference fetches by provider and result.",
		}, []string{"provider", "result"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certops_webhook_requests_total",
			Help: "Webhook requests by provider and result (triggered, ignored, ping, unauthorized, too_large, bad_request).",
		}, []string{"provider", "result"}),
		state:       &stateCollector{},
		handshakeBy: map[gateway.HandshakeResult]prometheus.Counter{},
		servedVerified: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "certops_served_verified",
			Help: "1 when every entity created or updated by the last apply was served with the applied leaf on a loopback handshake (the served-state proof), else 0; 0 before the first proof.",
		}),
		servedMismatches: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "certops_served_mismatches",
			Help: "Names the last served-state proof saw served without the applied leaf.",
		}),
		proofs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certops_served_proofs_total",
			Help: "Served-state proofs by result: verified or mismatch.",
		}, []string{"result"}),
		refusals: &refusalCollector{},
	}
	// Known results start at zero, so rate() and absent() work from the
	// first scrape.
	for _, r := range []gateway.HandshakeResult{gateway.HandshakeOK, gateway.HandshakeNoCertificate,
		gateway.HandshakeClientCertRejected, gateway.HandshakeProtocol, gateway.HandshakeOther} {
		m.handshakeBy[r] = m.handshakes.WithLabelValues(r.String())
	}
	for _, r := range []reconciler.Result{reconciler.ResultApplied, reconciler.ResultUnchanged, reconciler.ResultStalled, reconciler.ResultFailed} {
		m.reconciles.WithLabelValues(r.String())
	}
	for _, r := range []string{proofVerified, proofMismatch} {
		m.proofs.WithLabelValues(r)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.reconciles, m.durations, m.handshakes, m.secretFetches, m.webhooks, m.state,
		m.servedVerified, m.servedMismatches, m.proofs, m.refusals,
	)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveRun counts a reconcile run and its phase durations; it is the
// reconciler's Options.Observe hook.
func (m *Metrics) ObserveRun(r reconciler.RunReport) {
	if r.Result != "" {
		m.reconciles.WithLabelValues(r.Result.String()).Inc()
	}
	for phase, d := range r.Phases {
		m.durations.WithLabelValues(phase.String()).Observe(d.Seconds())
	}
}

// ObserveHandshake counts a TLS handshake; it is the gateway's
// Options.OnHandshake hook and stays cheap: a map read and an atomic add.
func (m *Metrics) ObserveHandshake(r gateway.HandshakeResult) {
	if c, ok := m.handshakeBy[r]; ok {
		c.Inc()
		return
	}
	m.handshakes.WithLabelValues(r.String()).Inc()
}

// ObserveSecretFetch counts a secret fetch; it is the secret store's
// Options.OnFetch hook.
func (m *Metrics) ObserveSecretFetch(provider, result string) {
	m.secretFetches.WithLabelValues(provider, result).Inc()
}

// Results of certops_served_proofs_total.
const (
	proofVerified = "verified"
	proofMismatch = "mismatch"
)

// ObserveProof records a finished served-state proof; the daemon calls it
// from the [reconciler.Prover]'s result hook.
func (m *Metrics) ObserveProof(p reconciler.Proof) {
	v, result := 0.0, proofMismatch
	if p.Verified {
		v, result = 1, proofVerified
	}
	m.servedVerified.Set(v)
	m.servedMismatches.Set(float64(len(p.Mismatches)))
	m.proofs.WithLabelValues(result).Inc()
}

// BindFleetRefusals exports refusals, read at every scrape, as
// certops_fleet_refused_total{reason}: what a fleet node refused to apply
// (a manifest no trusted key signed, a blob whose digest does not match, a
// replayed older manifest...), by reason. refusals must be safe for
// concurrent use and return counts that only grow.
func (m *Metrics) BindFleetRefusals(refusals func() map[string]int64) {
	m.refusals.mu.Lock()
	m.refusals.read = refusals
	m.refusals.mu.Unlock()
}

func (m *Metrics) webhookRequest(provider, result string) {
	m.webhooks.WithLabelValues(provider, result).Inc()
}

// bind makes the state gauges read rec at every scrape.
func (m *Metrics) bind(rec Reconciler) {
	m.state.mu.Lock()
	m.state.rec = rec
	m.state.mu.Unlock()
}

// stateCollector exports the reconciler's state as gauges at scrape time.
type stateCollector struct {
	mu  sync.Mutex // guards rec
	rec Reconciler // nil until bound: nothing is exported
}

var (
	appliedRevisionDesc = prometheus.NewDesc("certops_applied_revision_info",
		"The revision being served (value 1).", []string{"revision"}, nil)
	lastAppliedDesc = prometheus.NewDesc("certops_last_applied_timestamp_seconds",
		"Unix time of the last applied revision.", nil, nil)
	entitiesDesc = prometheus.NewDesc("certops_entities",
		"Entities being served, by type.", []string{"type"}, nil)
	notAfterDesc = prometheus.NewDesc("certops_certificate_not_after_timestamp_seconds",
		"Unix time at which a served certificate expires, by entity and chain index (0 is cert, 1 is certs[0], ...).",
		[]string{"entity", "chain"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- appliedRevisionDesc
	ch <- lastAppliedDesc
	ch <- entitiesDesc
	ch <- notAfterDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	rec := c.rec
	c.mu.Unlock()
	if rec == nil {
		return
	}
	if st := rec.Status(); st != nil && st.Applied != nil {
		ch <- prometheus.MustNewConstMetric(appliedRevisionDesc, prometheus.GaugeValue, 1, st.Applied.ID)
		ch <- prometheus.MustNewConstMetric(lastAppliedDesc, prometheus.GaugeValue, float64(st.Applied.Time.UnixNano())/1e9)
	}
	byType := map[string]int{"server": 0, "client": 0}
	notAfter := func(name string, chain int, t time.Time) {
		ch <- prometheus.MustNewConstMetric(notAfterDesc, prometheus.GaugeValue, float64(t.Unix()), name, strconv.Itoa(chain))
	}
	if d, ok := rec.(Describer); ok {
		// Packed: a scrape reads the types and expiries alone.
		set := d.Descriptions()
		for i := range set.Len() {
			byType[set.Type(i)]++
			name := set.Name(i)
			set.Expiries(i, func(chain int, _ string, t time.Time) { notAfter(name, chain, t) })
		}
	} else {
		for _, e := range rec.Entities() {
			byType[e.Type]++
			for i, chain := range e.Chains {
				if !chain.NotAfter.IsZero() {
					notAfter(e.Name, i, chain.NotAfter)
				}
			}
		}
	}
	for t, n := range byType {
		ch <- prometheus.MustNewConstMetric(entitiesDesc, prometheus.GaugeValue, float64(n), t)
	}
}

var fleetRefusedDesc = prometheus.NewDesc("certops_fleet_refused_total",
	"Manifests and blobs a fleet node refused to apply, by reason (untrusted, digest, replay, malformed, sealed, fleet).",
	[]string{"reason"}, nil)

// refusalCollector exports a fleet node's refusal counts at scrape time.
type refusalCollector struct {
	mu   sync.Mutex              // guards read
	read func() map[string]int64 // nil unless the daemon is a fleet node
}

func (c *refusalCollector) Describe(ch chan<- *prometheus.Desc) { ch <- fleetRefusedDesc }

func (c *refusalCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	read := c.read
	c.mu.Unlock()
	if read == nil {
		return
	}
	for reason, n := range read() {
		ch <- prometheus.MustNewConstMetric(fleetRefusedDesc, prometheus.CounterValue, float64(n), reason)
	}
}
