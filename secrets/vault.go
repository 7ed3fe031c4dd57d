package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Retry policy of Vault requests: network errors, 429 and 5xx (except 501)
// are retried with exponential backoff (honouring Retry-After); other 4xx
// are final. These match the Vault CLI's defaults.
const (
	vaultRetryMax     = 2
	vaultRetryWaitMin = 1000 * time.Millisecond
	vaultRetryWaitMax = 1500 * time.Millisecond
)

// vaultClient reads KV secrets over Vault's HTTP API. It is safe for
// concurrent use.
type vaultClient struct {
	cfg  vaultConfig
	http *retryablehttp.Client
	now  func() time.Time // the clock of token lifetimes; tests move it
	log  *slog.Logger

	mountsMu sync.Mutex      // guards mounts
	mounts   map[string]int  // detected KV version by mount path ("secret/")
	tok      vaultTokenState // see vault_auth.go
}

// Format prints the configuration only: fmt cannot reach vaultConfig's own
// redaction through unexported fields, and the token state must not print.
func (v *vaultClient) Format(f fmt.State, verb rune) { v.cfg.Format(f, verb) }

// LogValue implements slog.LogValuer likewise.
func (v *vaultClient) LogValue() slog.Value { return v.cfg.LogValue() }

func newVaultClient(getenv func(string) (string, bool), base *http.Client, log *slog.Logger) (*vaultClient, error) {
	cfg, err := vaultConfigFromEnv(getenv)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	if base == nil {
		if base, err = vaultHTTPClient(getenv); err != nil {
			return nil, fmt.Errorf("vault: %w", err)
		}
	}
	rc := &retryablehttp.Client{
		HTTPClient:   base,
		Logger:       debugLogger{log},
		RetryWaitMin: vaultRetryWaitMin,
		RetryWaitMax: vaultRetryWaitMax,
		RetryMax:     vaultRetryMax,
		CheckRetry:   retryablehttp.DefaultRetryPolicy,
		Backoff:      retryablehttp.DefaultBackoff,
		// Keep the last response when retries run out, so the error says
		// what Vault answered (sealed, rate limited) instead of only
		// "giving up".
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	return &vaultClient{cfg: cfg, http: rc, now: time.Now, log: log, mounts: make(map[string]int)}, nil
}

// fetch reads $secret://vault/<path>/<field>.
func (v *vaultClient) fetch(ctx context.Context, refPath string) ([]byte, error) {
	i := strings.LastIndexByte(refPath, '/')
	if i < 0 {
		return nil, errors.New("want <path>/<field>")
	}
	secretPath, field := refPath[:i], refPath[i+1:]
	version, mount, err := v.kvVersion(ctx, secretPath)
	if err != nil {
		return nil, err
	}
	apiPath := secretPath
	if version == 2 {
		apiPath = kvV2DataPath(secretPath, mount)
	}
	raw, err := memoized(ctx, "vault:"+apiPath, func() ([]byte, error) {
		var raw json.RawMessage
		err := v.authedJSON(ctx, http.MethodGet, apiPath, nil, &raw)
		return raw, err
	})
	if err != nil {
		return nil, err
	}
	var body struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("vault: read %s: response is not a KV secret", apiPath)
	}
	var fields map[string]any
	if version == 2 {
		var data struct {
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(body.Data, &data); err != nil {
			return nil, fmt.Errorf("vault: read %s: response is not a KV v2 secret", apiPath)
		}
		fields = data.Data
	} else if err := json.Unmarshal(body.Data, &fields); err != nil {
		return nil, fmt.Errorf("vault: read %s: response is not a KV v1 secret", apiPath)
	}
	if fields == nil {
		// KV v2 answers a deleted version with data: null.
		return nil, fmt.Errorf("vault: read %s: %w", apiPath, ErrNotFound)
	}
	val, ok := fields[field]
	if !ok {
		return nil, fmt.Errorf("vault: read %s: field %s: %w", apiPath, field, ErrNotFound)
	}
	return fieldBytes(val, field)
}

// kvVersion returns the KV version and mount path of a secret path: forced
// by VAULT_KV_VERSION (the mount is then the first segment), else detected
// once per mount with the endpoint the Vault CLI uses,
// GET /v1/sys/internal/ui/mounts/<path>.
func (v *vaultClient) kvVersion(ctx context.Context, secretPath string) (int, string, error) {
	if v.cfg.kvVersion != 0 {
		mount, _, _ := strings.Cut(secretPath, "/")
		return v.cfg.kvVersion, mount + "/", nil
	}
	v.mountsMu.Lock()
	best := ""
	for m := range v.mounts {
		if strings.HasPrefix(secretPath+"/", m) && len(m) > len(best) {
			best = m
		}
	}
	if best != "" {
		version := v.mounts[best]
		v.mountsMu.Unlock()
		return version, best, nil
	}
	v.mountsMu.Unlock()

	var body struct {
		Data struct {
			Path    string            `json:"path"`
			Type    string            `json:"type"`
			Options map[string]string `json:"options"`
		} `json:"data"`
	}
	err := v.authedJSON(ctx, http.MethodGet, "sys/internal/ui/mounts/"+secretPath, nil, &body)
	var ve *VaultError
	if errors.As(err, &ve) && ve.Status == http.StatusNotFound {
		// Vault before 0.10.2 has no such endpoint and only KV v1; the CLI
		// draws the same conclusion. Not remembered: the mount is unknown.
		return 1, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("detect KV version: %w", err)
	}
	version := 1
	if body.Data.Options["version"] == "2" {
		version = 2
	}
	mount := body.Data.Path
	if mount != "" {
		if !strings.HasSuffix(mount, "/") {
			mount += "/"
		}
		v.mountsMu.Lock()
		v.mounts[mount] = version
		v.mountsMu.Unlock()
		v.log.Debug("vault KV mount detected", "mount", mount, "version", version)
	}
	return version, mount, nil
}

// kvV2DataPath inserts "data/" after the mount, as the Vault CLI's kv
// commands do: secret/tls/shop → secret/data/tls/shop. The mount Vault
// reports may carry namespace segments that the path does not; they are
// dropped from the front until the mount is a prefix of the path.
func kvV2DataPath(secretPath, mount string) string {
	mount = strings.TrimSuffix(mount, "/")
	for mount != "" && secretPath != mount && !strings.HasPrefix(secretPath, mount+"/") {
		_, rest, ok := strings.Cut(mount, "/")
		if !ok {
			mount = ""
			break
		}
		mount = rest
	}
	if mount == "" {
		mount, _, _ = strings.Cut(secretPath, "/")
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(secretPath, mount), "/")
	return path.Join(mount, "data", rest)
}

// VaultError is a non-2xx answer from Vault. Errors holds Vault's own
// messages from its {"errors": [...]} body, which never contain secret
// values.
type VaultError struct {
	Method, Path string
	Status       int
	Errors       []string
}

func (e *VaultError) Error() string {
	msg := http.StatusText(e.Status)
	if len(e.Errors) > 0 {
		msg = strings.Join(e.Errors, "; ")
	}
	return fmt.Sprintf("vault: %s /v1/%s: %d: %s", e.Method, e.Path, e.Status, msg)
}

// Unwrap makes a 404 match ErrNotFound.
func (e *VaultError) Unwrap() error {
	if e.Status == http.StatusNotFound {
		return ErrNotFound
	}
	return nil
}

// do sends one request (with retries) to /v1/<apiPath> with the given token
// ("" for none) and decodes a 2xx JSON answer into out. Any other status is
// a *VaultError.
func (v *vaultClient) do(ctx context.Context, method, apiPath, token string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("vault: %s /v1/%s: encode request: %w", method, apiPath, err)
		}
		body = bytes.NewReader(b)
	}
	u := v.cfg.addr + "/v1/" + escapePath(apiPath)
	req, err := retryablehttp.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("vault: %s /v1/%s: %w", method, apiPath, err)
	}
	req.Header.Set("X-Vault-Request", "true")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	if v.cfg.namespace != "" {
		req.Header.Set("X-Vault-Namespace", v.cfg.namespace)
	}
	resp, err := v.http.Do(req)
	if err != nil {
		return fmt.Errorf("vault: %s /v1/%s: %w", method, apiPath, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, vaultMaxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("vault: %s /v1/%s: read response: %w", method, apiPath, err)
	}
	if len(data) > vaultMaxResponseBytes {
		return fmt.Errorf("vault: %s /v1/%s: response larger than %d bytes", method, apiPath, vaultMaxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ve := &VaultError{Method: method, Path: apiPath, Status: resp.StatusCode}
		var eb struct {
			Errors []string `json:"errors"`
		}
		// Error bodies hold messages only; a body that is not this shape
		// is not quoted.
		if json.Unmarshal(data, &eb) == nil {
			ve.Errors = eb.Errors
		}
		return ve
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			// The body may hold secrets: say what failed, not what was read.
			return fmt.Errorf("vault: %s /v1/%s: response is not the expected JSON", method, apiPath)
		}
	}
	return nil
}

// escapePath escapes each segment of an API path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// debugLogger lets retryablehttp log through slog at debug level: its
// per-attempt failures are not errors of ours until the retries run out.
type debugLogger struct{ l *slog.Logger }

func (d debugLogger) Error(msg string, kv ...any) { d.l.Debug("vault http: "+msg, kv...) }
func (d debugLogger) Info(msg string, kv ...any)  { d.l.Debug("vault http: "+msg, kv...) }
func (d debugLogger) Debug(msg string, kv ...any) { d.l.Debug("vault http: "+msg, kv...) }
func (d debugLogger) Warn(msg string, kv ...any)  { d.l.Debug("vault http: "+msg, kv...) }
