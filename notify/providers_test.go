package notify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"certops/notify"
)

// received is one request a local receiver got.
type received struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// receiver is a local HTTP server standing in for a vendor's endpoint
// (Slack, Teams, Alertmanager, a generic webhook): they cannot run here, so
// each test decodes the request as the vendor documents it.
func receiver(tb testing.TB, status int) (*httptest.Server, <-chan received) {
	tb.Helper()
	ch := make(chan received, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ch <- received{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
		w.WriteHeader(status)
	}))
	tb.Cleanup(srv.Close)
	return srv, ch
}

func next(tb testing.TB, ch <-chan received) received {
	tb.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		tb.Fatal("no request received")
		return received{}
	}
}

var stalled = notify.Message{
	Event:    notify.EventStalled,
	Name:     "edge",
	Source:   "https://git.example.com/tls.git@main",
	Revision: "0123456789abcdef0123456789abcdef01234567",
	Summary:  "revision refused: 2 errors",
	Problems: []notify.Problem{
		{File: "shop.yaml", Line: 3, Column: 5, Field: "snis[0]", Message: "not covered by the certificate"},
		{File: "api.yaml", Line: 7, Message: "key does not match <cert> & chain"},
	},
}

// deliverOne sends m to t through a Notifier and returns what the
// receiver got.
func deliverOne(tb testing.TB, t notify.Target, m notify.Message, ch <-chan received) received {
	tb.Helper()
	n := notify.New(notify.Options{Targets: []notify.Target{t}, RetryWaitMin: time.Millisecond, RetryWaitMax: 10 * time.Millisecond})
	tb.Cleanup(func() { n.Shutdown(tb.Context()) })
	n.Notify(m)
	return next(tb, ch)
}

func TestWebhookIsSignedAsCertopsExpects(t *testing.T) {
	srv, ch := receiver(t, http.StatusAccepted)
	secret := []byte("s3cret")
	r := deliverOne(t, notify.Target{Provider: &notify.Webhook{URL: srv.URL + "/hook", Secret: secret}}, stalled, ch)

	// The check of reconciler/admin/webhook.go's verifyHMAC: "sha256=" and
	// the hex HMAC-SHA256 of the raw body.
	sig, ok := strings.CutPrefix(r.Header.Get("X-Signature-256"), "sha256=")
	mac := hmac.New(sha256.New, secret)
	mac.Write(r.Body)
	if got, _ := hex.DecodeString(sig); !ok || !hmac.Equal(got, mac.Sum(nil)) {
		t.Errorf("X-Signature-256 = %q, want sha256=HMAC-SHA256(body)", r.Header.Get("X-Signature-256"))
	}
	if r.Method != http.MethodPost || r.Path != "/hook" || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Certops-Event") != "stalled" {
		t.Errorf("request = %s %s %v, want a JSON POST to /hook with X-Certops-Event", r.Method, r.Path, r.Header)
	}
	var got notify.Message
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Event != notify.EventStalled || got.Revision != stalled.Revision || len(got.Problems) != 2 || got.Problems[0].String() != "shop.yaml:3:5: snis[0]: not covered by the certificate" {
		t.Errorf("webhook body = %s", r.Body)
	}
	// certops' generic receiver treats a "ref" field as the pushed ref;
	// a notification must not name one.
	if strings.Contains(string(r.Body), `"ref"`) {
		t.Errorf("webhook body has a ref field: %s", r.Body)
	}
}

func TestSlackPayload(t *testing.T) {
	srv, ch := receiver(t, http.StatusOK)
	r := deliverOne(t, notify.Target{Provider: &notify.Slack{URL: srv.URL + "/services/T0/B0/XXXX"}}, stalled, ch)
	// https://api.slack.com/messaging/webhooks: a JSON object with text
	// (required) and optional legacy attachments.
	var p struct {
		Text        string `json:"text"`
		Attachments []struct {
			Color string `json:"color"`
			Text  string `json:"text"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Text != "edge: stalled at 0123456789ab" || len(p.Attachments) != 1 || p.Attachments[0].Color != "danger" {
		t.Errorf("slack payload = %s", r.Body)
	}
	if a := p.Attachments[0].Text; !strings.Contains(a, "shop.yaml:3:5") || !strings.Contains(a, "&lt;cert&gt; &amp; chain") {
		t.Errorf("slack text = %q, want problems with file:line and Slack escaping", a)
	}
}

func TestTeamsAdaptiveCard(t *testing.T) {
	srv, ch := receiver(t, http.StatusAccepted)
	r := deliverOne(t, notify.Target{Provider: &notify.Teams{URL: srv.URL + "/workflows/abc"}}, stalled, ch)
	// The Teams workflow trigger takes a message whose attachment is an
	// Adaptive Card (contentType application/vnd.microsoft.card.adaptive).
	var p struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string `json:"contentType"`
			Content     struct {
				Type    string `json:"type"`
				Version string `json:"version"`
				Body    []struct {
					Type  string `json:"type"`
					Text  string `json:"text"`
					Facts []struct{ Title, Value string }
				} `json:"body"`
			} `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != "message" || len(p.Attachments) != 1 || p.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" || p.Attachments[0].Content.Type != "AdaptiveCard" {
		t.Fatalf("teams payload = %s", r.Body)
	}
	var texts []string
	for _, b := range p.Attachments[0].Content.Body {
		texts = append(texts, b.Text)
		for _, f := range b.Facts {
			texts = append(texts, f.Title+"="+f.Value)
		}
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{"edge: stalled", "Revision=" + stalled.Revision, "api.yaml:7: key does not match"} {
		if !strings.Contains(all, want) {
			t.Errorf("teams card %q lacks %q", all, want)
		}
	}
}

type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

func TestAlertmanagerFiresAndResolves(t *testing.T) {
	srv, ch := receiver(t, http.StatusOK)
	n := notify.New(notify.Options{Targets: []notify.Target{{Provider: &notify.Alertmanager{URL: srv.URL}}}})
	t.Cleanup(func() { n.Shutdown(t.Context()) })

	decode := func(r received) []amAlert {
		t.Helper()
		// POST /api/v2/alerts takes a JSON array of postableAlert.
		if r.Method != http.MethodPost || r.Path != "/api/v2/alerts" {
			t.Fatalf("request %s %s, want POST /api/v2/alerts", r.Method, r.Path)
		}
		var alerts []amAlert
		if err := json.Unmarshal(r.Body, &alerts); err != nil {
			t.Fatal(err)
		}
		return alerts
	}
	n.Notify(stalled)
	fired := decode(next(t, ch))
	if len(fired) != 1 || fired[0].Labels["alertname"] != "CertopsRevisionStalled" || fired[0].Labels["certops"] != "edge" ||
		!fired[0].EndsAt.After(time.Now()) || fired[0].Annotations["revision"] != stalled.Revision || !strings.Contains(fired[0].Annotations["description"], "shop.yaml:3:5") {
		t.Fatalf("stalled alerts = %+v", fired)
	}
	if _, ok := fired[0].Labels["revision"]; ok {
		t.Errorf("revision is a label; a new revision would not resolve the alert")
	}
	n.Notify(notify.Message{Event: notify.EventRecovered, Name: "edge", Revision: "fedcba"})
	resolved := decode(next(t, ch))
	found := false
	for _, a := range resolved {
		if a.Labels["alertname"] == "CertopsRevisionStalled" {
			found = true
			if a.EndsAt.After(time.Now()) || len(a.Labels) != len(fired[0].Labels) {
				t.Errorf("recovered sent %+v, want the stalled alert's labels with endsAt now", a)
			}
		}
	}
	if !found {
		t.Errorf("recovered alerts = %+v, want CertopsRevisionStalled resolved", resolved)
	}
}

func TestNoKeyMaterialLeaves(t *testing.T) {
	srv, ch := receiver(t, http.StatusOK)
	key := "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBvE\n-----END PRIVATE KEY-----"
	m := notify.Message{Event: notify.EventFailed, Summary: "oops " + key, Problems: []notify.Problem{{File: "a.yaml", Line: 1, Message: "bad value " + key}}}
	for _, p := range []notify.Provider{&notify.Webhook{URL: srv.URL}, &notify.Slack{URL: srv.URL}, &notify.Teams{URL: srv.URL}, &notify.Alertmanager{URL: srv.URL}} {
		r := deliverOne(t, notify.Target{Provider: p}, m, ch)
		if strings.Contains(string(r.Body), "PRIVATE KEY") || strings.Contains(string(r.Body), "MC4CAQAwBQYDK2VwBCIEIBvE") {
			t.Errorf("%s sent key material: %s", p, r.Body)
		}
	}
}
