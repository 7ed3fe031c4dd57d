package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"certops/plan"
)

// Client reads a running daemon's admin API; `certops status` and
// `certops diff --live` use it. The zero HTTPClient means a client with a
// 30 s timeout.
type Client struct {
	// Base is the admin API's URL, e.g. http://127.0.0.1:9180; a bare
	// host:port is taken as http.
	Base string
	// Token, when set, is sent as a bearer token.
	Token      string
	HTTPClient *http.Client
}

// Status fetches GET /api/v1/status.
func (c *Client) Status(ctx context.Context) (*StatusDoc, error) {
	var st StatusDoc
	if err := c.get(ctx, "/api/v1/status", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// SSLs fetches GET /api/v1/ssls: the descriptions of the served entities.
func (c *Client) SSLs(ctx context.Context) ([]plan.EntityInfo, error) {
	var docs []plan.EntityInfo
	if err := c.get(ctx, "/api/v1/ssls", &docs); err != nil {
		return nil, err
	}
	return docs, nil
}

func (c *Client) get(ctx context.Context, path string, v any) error {
	base, err := c.baseURL()
	if err != nil {
		return err
	}
	u := base.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("admin API %s: %w", u.Redacted(), err)
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		// url.Error repeats the URL; it is ours, redacted above if needed.
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("admin API %s: read: %w", u.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("admin API %s: %s: %s", u.Redacted(), resp.Status, e.Error)
		}
		return fmt.Errorf("admin API %s: %s", u.Redacted(), resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("admin API %s: decode: %w", u.Redacted(), err)
	}
	return nil
}

func (c *Client) baseURL() (*url.URL, error) {
	raw := strings.TrimSpace(c.Base)
	if raw == "" {
		return nil, errors.New("admin API: no address")
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("admin API address: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("admin API address %s: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("admin API address %s: no host", u.Redacted())
	}
	return u, nil
}
