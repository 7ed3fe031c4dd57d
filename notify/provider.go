package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// Provider turns a message into the HTTP request its service expects. A
// new service is a new file with a new Provider; the Notifier does the
// delivery, retries and queueing for all of them.
type Provider interface {
	// Request builds the request that delivers m. m has been sanitized:
	// it holds no key material.
	Request(ctx context.Context, m Message) (*http.Request, error)
	// String names the provider and its endpoint for logs and errors,
	// without credentials: "slack https://hooks.slack.com".
	String() string
}

// userAgent is sent with every delivery.
const userAgent = "certops-notify"

// postJSON builds a POST of v as JSON to u.
func postJSON(ctx context.Context, u string, v any) (*http.Request, []byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	return req, body, nil
}

// endpoint describes u for logs: scheme and host only, since the path and
// query of a Slack or Teams webhook URL are its credential.
func endpoint(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return "(invalid URL)"
	}
	return p.Scheme + "://" + p.Host
}

// checkURL refuses what cannot be a webhook endpoint.
func checkURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("url: %w", redactURLError(err))
	}
	if p.Scheme != "http" && p.Scheme != "https" {
		return fmt.Errorf("url %s: scheme must be http or https", endpoint(u))
	}
	if p.Host == "" {
		return fmt.Errorf("url: no host")
	}
	return nil
}

// redactURLError drops the URL from a *url.Error, which would otherwise
// print it whole.
func redactURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s %s: %w", ue.Op, endpoint(ue.URL), ue.Err)
	}
	return err
}
