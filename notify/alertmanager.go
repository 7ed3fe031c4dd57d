package notify

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Alertmanager posts alerts to Prometheus Alertmanager's
// POST /api/v2/alerts (https://prometheus.io/docs/alerting/latest/clients/).
// Bad news fires an alert; good news resolves the alerts it ends by
// sending them again with endsAt set to now:
//
//	stalled            CertopsRevisionStalled     resolved by applied, recovered
//	failed             CertopsReconcileFailed     resolved by applied, recovered
//	degraded           CertopsEntityDegraded      resolved by recovered (same entity)
//	verified-mismatch  CertopsVerifyMismatch      resolved by applied
//	expiring           CertopsCertificateExpiring (per entity; lasts 25 h, re-sent daily)
//
// Labels are alertname, certops (the daemon's name), severity and, for
// entity alerts, entity; the revision, summary and problems are
// annotations, so an alert keeps its identity across revisions. A firing
// alert lasts 24 h unless resolved or sent again.
type Alertmanager struct {
	// URL is Alertmanager's base URL (http://alertmanager:9093) or the
	// full /api/v2/alerts URL.
	URL string
	// GeneratorURL, when set, links each alert back (e.g. the daemon's
	// status page).
	GeneratorURL string
}

func (a *Alertmanager) String() string { return "alertmanager " + endpoint(a.URL) }

type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// amFiringFor is how long a fired alert lasts without news.
const amFiringFor = 24 * time.Hour

func (a *Alertmanager) alertsURL() string {
	u := strings.TrimSuffix(a.URL, "/")
	if strings.HasSuffix(u, "/api/v2/alerts") {
		return u
	}
	return u + "/api/v2/alerts"
}

func (a *Alertmanager) Request(ctx context.Context, m Message) (*http.Request, error) {
	now := m.Time
	ann := map[string]string{"summary": m.Title()}
	if d := strings.Join(m.Lines(), "\n"); d != "" {
		ann["description"] = d
	}
	for k, v := range map[string]string{"revision": m.Revision, "source": m.Source, "entity": m.Entity} {
		if v != "" {
			ann[k] = v
		}
	}
	alert := func(name, severity string, entity bool, endsAt time.Time) amAlert {
		l := map[string]string{"alertname": name, "certops": m.Name, "severity": severity}
		if entity && m.Entity != "" {
			l["entity"] = m.Entity
		}
		return amAlert{Labels: l, Annotations: ann, StartsAt: now, EndsAt: endsAt, GeneratorURL: a.GeneratorURL}
	}
	var alerts []amAlert
	switch m.Event {
	case EventStalled:
		alerts = append(alerts, alert("CertopsRevisionStalled", "critical", false, now.Add(amFiringFor)))
	case EventFailed:
		alerts = append(alerts, alert("CertopsReconcileFailed", "warning", false, now.Add(amFiringFor)))
	case EventDegraded:
		alerts = append(alerts, alert("CertopsEntityDegraded", "warning", true, now.Add(amFiringFor)))
	case EventVerifiedMismatch:
		alerts = append(alerts, alert("CertopsVerifyMismatch", "critical", false, now.Add(amFiringFor)))
	case EventExpiring:
		alerts = append(alerts, alert("CertopsCertificateExpiring", "warning", true, now.Add(amFiringFor+time.Hour)))
	case EventApplied:
		alerts = append(alerts,
			alert("CertopsRevisionStalled", "critical", false, now),
			alert("CertopsReconcileFailed", "warning", false, now),
			alert("CertopsVerifyMismatch", "critical", false, now))
	case EventRecovered:
		if m.Entity != "" {
			alerts = append(alerts, alert("CertopsEntityDegraded", "warning", true, now))
		} else {
			alerts = append(alerts,
				alert("CertopsRevisionStalled", "critical", false, now),
				alert("CertopsReconcileFailed", "warning", false, now))
		}
	}
	req, _, err := postJSON(ctx, a.alertsURL(), alerts)
	return req, err
}
