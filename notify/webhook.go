package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
)

// Webhook posts the message as JSON (the fields of [Message]) to URL. With
// a Secret, the body is signed with HMAC-SHA256 in X-Signature-256 as
// "sha256=<hex>", GitHub's form, which certops' own POST /hooks/generic
// verifies; so one certops can trigger another. The event is also sent in
// X-Certops-Event.
type Webhook struct {
	URL    string
	Secret []byte
}

func (w *Webhook) String() string { return "webhook " + endpoint(w.URL) }

func (w *Webhook) Request(ctx context.Context, m Message) (*http.Request, error) {
	req, body, err := postJSON(ctx, w.URL, m)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Certops-Event", string(m.Event))
	if len(w.Secret) > 0 {
		req.Header.Set("X-Signature-256", "sha256="+Sign(w.Secret, body))
	}
	return req, nil
}

// Sign returns the hex HMAC-SHA256 of body under secret, the value of
// X-Signature-256 after "sha256=".
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}
