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

func init() {
	Register(Registration{Name: "vault", Open: openVault, ManagerFields: vaultManagerFields})
}

// Retry policy of Vault requests: network errors, 429 and 5xx (except 501)
// are retried with exponential backoff (honouring Retry-After); other 4xx
// are final. These match the Vault CLI's defaults.
const (
	vaultRetryMax     = 2
	vaultRetryWaitMin = 1000 * time.Millisecond
	vaultRetryWaitMax = 1500 * time.Millisecond
)

// vaultProvider resolves $secret://vault/ references: through the named
// secret manager that the first path segment names, if there is one, else
// through the server of the VAULT_* environment.
type vaultProvider struct {
	env      lazy[*vaultClient]
	managers map[string]*vaultClient // by manager id
	bg       background
}

var _ interface {
	Provider
	Locator
	Runner
} = (*vaultProvider)(nil)

func openVault(_ context.Context, cfg ProviderConfig) (Provider, error) {
	p := &vaultProvider{managers: make(map[string]*vaultClient)}
	// One HTTP client for every server: the TLS variables are the
	// environment's, and VAULT_SKIP_VERIFY is warned about once.
	baseClient := sync.OnceValues(func() (*http.Client, error) {
		if cfg.HTTPClient != nil {
			// A caller's client without a timeout gets the per-attempt
			// one: a hung server must fail an attempt within seconds.
			c := *cfg.HTTPClient
			if c.Timeout == 0 {
				t, err := vaultTimeout(cfg.Getenv)
				if err != nil {
					return nil, fmt.Errorf("vault: %w", err)
				}
				c.Timeout = t
			}
			return &c, nil
		}
		c, err := vaultHTTPClient(cfg.Getenv, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("vault: %w", err)
		}
		return c, nil
	})
	p.env.init = func(context.Context) (*vaultClient, error) {
		vcfg, err := vaultConfigFromEnv(cfg.Getenv)
		if err != nil {
			return nil, fmt.Errorf("vault: %w", err)
		}
		base, err := baseClient()
		if err != nil {
			return nil, err
		}
		if vcfg.kvForcedAll {
			cfg.Logger.Warn("VAULT_KV_VERSION without a mount applies to every mount; KV detection works for any token that can read the secret: prefer MOUNT=VERSION pairs or unset it",
				"kv_version", vcfg.kvVersions.all)
		}
		v := newVaultClient(vcfg, base, cfg.Logger, cfg.UserAgent)
		p.bg.Go(v.renewLoop)
		return v, nil
	}
	for _, m := range cfg.Managers {
		vcfg, err := vaultConfigFromManager(m, cfg.Getenv)
		if err != nil {
			return nil, err
		}
		base, err := baseClient()
		if err != nil {
			return nil, err
		}
		v := newVaultClient(vcfg, base, cfg.Logger.With("secret_manager", m.ID), cfg.UserAgent)
		p.managers[m.ID] = v
		p.bg.Go(v.renewLoop)
	}
	return p, nil
}

// route returns the client of a reference path and the path on that
// server: a manager's prefix replaces its id.
func (p *vaultProvider) route(ctx context.Context, refPath string) (*vaultClient, string, error) {
	id, rest, _ := strings.Cut(refPath, "/")
	if v, ok := p.managers[id]; ok {
		if strings.Count(rest, "/") < 1 {
			return nil, "", fmt.Errorf("vault secret manager %s: want $secret://vault/%s/<key-path>/<field>", id, id)
		}
		return v, path.Join(v.cfg.prefix, rest), nil
	}
	v, err := p.env.get(ctx)
	return v, refPath, err
}

// Fetch reads $secret://vault/<path>/<field> or
// $secret://vault/<manager-id>/<key-path>/<field>.
func (p *vaultProvider) Fetch(ctx context.Context, refPath string) ([]byte, error) {
	v, apiPath, err := p.route(ctx, refPath)
	if err != nil {
		return nil, err
	}
	return v.fetch(ctx, apiPath)
}

// Locate names the server (the environment's or a manager) and the secret.
func (p *vaultProvider) Locate(refPath string) Location {
	secret := refPath[:max(strings.LastIndexByte(refPath, '/'), 0)]
	id, _, _ := strings.Cut(refPath, "/")
	if _, ok := p.managers[id]; ok {
		return Location{Store: "vault secret manager " + id, Secret: secret}
	}
	return Location{Store: "vault", Secret: secret}
}

// Run renews the tokens of every server in use on their own schedule.
func (p *vaultProvider) Run(ctx context.Context) { p.bg.Run(ctx) }

// vaultClient reads KV secrets from one Vault server over its HTTP API. It
// is safe for concurrent use.
type vaultClient struct {
	cfg    vaultConfig
	http   *retryablehttp.Client
	now    func() time.Time // the clock of token lifetimes; tests move it
	log    *slog.Logger
	ua     string // User-Agent
	health vaultHealth

	mountsMu sync.Mutex      // guards mounts
	mounts   map[string]int  // detected KV version by mount path ("secret/")
	tok      vaultTokenState // see vault_auth.go
}

// Format prints the configuration only: fmt cannot reach vaultConfig's own
// redaction through unexported fields, and the token state must not print.
func (v *vaultClient) Format(f fmt.State, verb rune) { v.cfg.Format(f, verb) }

// LogValue implements slog.LogValuer likewise.
func (v *vaultClient) LogValue() slog.Value { return v.cfg.LogValue() }

// vaultHealth counts the attempts in a row that failed at the network
// level (refused, reset, timed out). Once the server is clearly down, a
// failed attempt is not retried, and a retry already waiting is dropped:
// the cache learns of the outage after one attempt per fetch instead of
// three (issue 17.1).
type vaultHealth struct {
	mu      sync.Mutex // guards failed, lastErr and lastAt
	failed  int
	lastErr error
	lastAt  time.Time
}

// vaultProbeAfter is how long after the last network failure of a server
// that is down a new request fails at once instead of being sent: the
// requests a refresh round starts right after the outage was seen do not
// each wait out their own timeout. Later requests probe the server again.
const vaultProbeAfter = 2 * time.Second

// vaultDownAfter is how many network failures in a row make the server
// clearly down.
const vaultDownAfter = 3

// observe records an attempt's outcome (err is its network error, nil if
// the server answered) and reports whether the server is down.
func (h *vaultHealth) observe(err error) (down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		h.failed, h.lastErr = 0, nil
		return false
	}
	h.failed++
	h.lastErr, h.lastAt = err, time.Now()
	return h.failed >= vaultDownAfter
}

// justFailed returns the last network error if the server is down and
// failed within vaultProbeAfter.
func (h *vaultHealth) justFailed() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed < vaultDownAfter || time.Since(h.lastAt) >= vaultProbeAfter {
		return nil
	}
	return fmt.Errorf("%w (not sent: %d network failures in a row, the last %v ago)", h.lastErr, h.failed, time.Since(h.lastAt).Round(time.Millisecond))
}

// down returns the last network error while the server is down.
func (h *vaultHealth) down() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed < vaultDownAfter {
		return nil
	}
	return fmt.Errorf("%w (not retried: %d network failures in a row)", h.lastErr, h.failed)
}

func newVaultClient(cfg vaultConfig, base *http.Client, log *slog.Logger, ua string) *vaultClient {
	v := &vaultClient{cfg: cfg, now: time.Now, log: log, ua: ua, mounts: make(map[string]int)}
	v.tok.wake = make(chan struct{}, 1)
	v.http = &retryablehttp.Client{
		HTTPClient:   base,
		Logger:       debugLogger{log},
		RetryWaitMin: vaultRetryWaitMin,
		RetryWaitMax: vaultRetryWaitMax,
		RetryMax:     vaultRetryMax,
		CheckRetry:   v.checkRetry,
		Backoff:      retryablehttp.DefaultBackoff,
		// Keep the last response when retries run out, so the error says
		// what Vault answered (sealed, rate limited) instead of only
		// "giving up".
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
		PrepareRetry: func(*http.Request) error { return v.health.down() },
	}
	return v
}

// checkRetry is the Vault CLI's retry policy (network errors, 429 and 5xx
// except 501), except that a network error is not retried once the server
// is clearly down.
func (v *vaultClient) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	retry, cerr := retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	if down := v.health.observe(err); down && ctx.Err() == nil {
		return false, cerr
	}
	return retry, cerr
}

// fetch reads <path>/<field> of this server. A path of a secret manager
// arrives with the manager's prefix in front.
func (v *vaultClient) fetch(ctx context.Context, refPath string) ([]byte, error) {
	i := strings.LastIndexByte(refPath, '/')
	if i < 0 {
		return nil, errors.New("want <path>/<field>")
	}
	secretPath, field := refPath[:i], refPath[i+1:]
	// The token first: a login or lookup failure is its own message, not
	// one of KV version detection (issue 17.7).
	if _, err := v.token(ctx); err != nil {
		return nil, err
	}
	version, mount, err := v.kvVersion(ctx, secretPath)
	if err != nil {
		return nil, err
	}
	apiPath := secretPath
	if version == 2 {
		apiPath = kvV2DataPath(secretPath, mount)
	}
	raw, err := ReadOnce(ctx, "vault:"+v.cfg.addr+"/"+apiPath, func() ([]byte, error) {
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
	if mount, version, ok := v.cfg.kvVersions.lookup(secretPath); ok {
		return version, mount, nil
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
		return 0, "", fmt.Errorf("detect the KV version of %s: %w", secretPath, err)
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
// commands do: secret/tls/shop → secret/data/tls/shop. A path that has it
// already (an APISIX secret manager's prefix written for KV v2,
// "kv/data/apisix") is kept as it is. The mount Vault
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
	if strings.HasPrefix(rest, "data/") {
		return path.Join(mount, rest)
	}
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
		var msgs []string
		for _, m := range e.Errors {
			msgs = append(msgs, flattenVaultError(m)...)
		}
		msg = strings.Join(msgs, "; ")
	}
	return fmt.Sprintf("vault: %s /v1/%s: %d: %s", e.Method, e.Path, e.Status, msg)
}

// flattenVaultError turns one of Vault's messages into single lines. Vault
// wraps several causes with go-multierror ("2 errors occurred:\n\t* a\n\t*
// b\n\n"), which would break a log line or a status field in the middle.
func flattenVaultError(m string) []string {
	var out []string
	for _, line := range strings.Split(m, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasSuffix(line, "error occurred:") || strings.HasSuffix(line, "errors occurred:") {
			continue
		}
		out = append(out, strings.TrimSpace(strings.TrimPrefix(line, "* ")))
	}
	if len(out) == 0 {
		out = []string{strings.TrimSpace(m)}
	}
	return out
}

// Unwrap makes a 404 match ErrNotFound, and a sealed, overloaded or rate
// limiting server (429, 5xx) ErrUnavailable.
func (e *VaultError) Unwrap() error {
	switch {
	case e.Status == http.StatusNotFound:
		return ErrNotFound
	case e.Status == http.StatusTooManyRequests || e.Status >= 500:
		return ErrUnavailable
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
	req.Header.Set("User-Agent", v.ua)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	if v.cfg.namespace != "" {
		req.Header.Set("X-Vault-Namespace", v.cfg.namespace)
	}
	if err := v.health.justFailed(); err != nil {
		return fmt.Errorf("vault: %s /v1/%s: %w", method, apiPath, unavailable(err))
	}
	resp, err := v.http.Do(req)
	if err != nil {
		if strings.HasPrefix(v.cfg.addr, "http://") && strings.Contains(err.Error(), `malformed HTTP response "\x15\x03`) {
			return fmt.Errorf("vault: %s /v1/%s: %s speaks TLS: use an https:// address", method, apiPath, v.cfg.addr)
		}
		return fmt.Errorf("vault: %s /v1/%s: %w", method, apiPath, unavailable(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, vaultMaxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("vault: %s /v1/%s: read response: %w", method, apiPath, err)
	}
	if len(data) > vaultMaxResponseBytes {
		return fmt.Errorf("vault: %s /v1/%s: response larger than %d bytes", method, apiPath, vaultMaxResponseBytes)
	}
	if resp.StatusCode == http.StatusBadRequest && bytes.Contains(data, []byte("HTTP request to an HTTPS server")) {
		// Go's TLS listener answers a plain HTTP request so.
		return fmt.Errorf("vault: %s /v1/%s: %s speaks TLS: use an https:// address", method, apiPath, v.cfg.addr)
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
