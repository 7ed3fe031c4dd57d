package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"certops/schema"
	"certops/secrets/ref"
)

// testEnv is a mutable environment for Options.Getenv.
type testEnv struct {
	mu   sync.Mutex
	vars map[string]string
}

func newTestEnv(vars map[string]string) *testEnv { return &testEnv{vars: vars} }

func (e *testEnv) Getenv(k string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.vars[k]
	return v, ok
}

func (e *testEnv) Set(k, v string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.vars[k] = v
}

func (e *testEnv) Unset(k string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.vars, k)
}

func TestResolveEnv(t *testing.T) {
	env := newTestEnv(map[string]string{
		"TLS_KEY":  "pem-key",
		"tls_key":  "lower-case-variable",
		"TLS_JSON": `{"key":"json-key","cert":"json-cert","n":7}`,
		"EMPTY":    "",
	})
	c, err := New(Options{Getenv: env.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref      string
		want     string
		err      string // "" = success
		notFound bool
	}{
		{ref: "$env://TLS_KEY", want: "pem-key"},
		{ref: "$ENV://TLS_KEY", want: "pem-key"},
		{ref: "$Env://tls_key", want: "lower-case-variable"},
		{ref: "$env://TLS_JSON/key", want: "json-key"},
		{ref: "$env://TLS_JSON/cert", want: "json-cert"},
		{ref: "$env://TLS_JSON/n", want: "7"},
		{ref: "$env://Tls_Key", err: "environment variable Tls_Key is not set", notFound: true},
		{ref: "$env://TLS_JSON/missing", err: "field missing", notFound: true},
		{ref: "$env://TLS_KEY/key", err: "value is not JSON"},
		{ref: "$env://EMPTY", err: "environment variable EMPTY is empty"},
		{ref: "$env://", err: "empty path"},
		{ref: "$env://A/b/c", err: "want $env://NAME or $env://NAME/field"},
		{ref: "$env://A B", err: "white space"},
		{ref: "$secret://gcp/x/y", err: "unknown provider"},
		{ref: "$secret://vault/onlypath", err: "a path and a field"},
		{ref: "$secret://vault//x", err: "empty path segment"},
		{ref: "$secret://aws", err: "want $secret://vault/<path>/<field>"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := c.Resolve(t.Context(), tt.ref)
			if tt.err == "" {
				if err != nil || string(got) != tt.want {
					t.Errorf("Resolve(%q) = %q, %v, want %q", tt.ref, got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.ref) {
				t.Fatalf("Resolve(%q) = %q, %v, want an error naming the reference and containing %q", tt.ref, got, err, tt.err)
			}
			if errors.Is(err, ErrNotFound) != tt.notFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, !tt.notFound, tt.notFound)
			}
			if strings.Contains(err.Error(), "pem-key") || strings.Contains(err.Error(), "json-key") {
				t.Errorf("error %q contains a value", err)
			}
		})
	}
	// A literal value is not a reference, and is not quoted.
	const literal = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI..."
	_, err = c.Resolve(t.Context(), literal)
	if !errors.Is(err, schema.ErrNotReference) || strings.Contains(err.Error(), "PRIVATE") {
		t.Errorf("Resolve(literal PEM) = %v, want schema.ErrNotReference without the value", err)
	}
}

// TestResolveReturnsCopies: a caller that scribbles on its value does not
// change the cached one.
func TestResolveReturnsCopies(t *testing.T) {
	c, _ := New(Options{Getenv: mapEnv(map[string]string{"K": "value"})})
	a, _ := c.Resolve(t.Context(), "$env://K")
	a[0] = 'X'
	if b, _ := c.Resolve(t.Context(), "$env://K"); string(b) != "value" {
		t.Errorf("second Resolve = %q after the first result was modified, want value", b)
	}
}

func TestNewOptions(t *testing.T) {
	if _, err := New(Options{Refresh: -time.Second}); err == nil {
		t.Error("New(Refresh: -1s) succeeded, want an error")
	}
	c, err := New(Options{})
	if err != nil || c.opts.Refresh != DefaultRefresh {
		t.Errorf("New(Options{}) = refresh %v, %v, want %v", c.opts.Refresh, err, DefaultRefresh)
	}
}

// TestRefreshLoop drives Run with the fake clock of testing/synctest: a
// change is picked up within one interval and OnChange fires; a failure
// keeps the old value, makes the reference stale and is retried with
// backoff; recovery clears the staleness.
func TestRefreshLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newTestEnv(map[string]string{"TLS_KEY": "v1"})
		var changes, fetches atomic.Int32
		c, err := New(Options{
			Refresh:  time.Minute,
			Getenv:   env.Getenv,
			OnChange: func() { changes.Add(1) },
			OnFetch: func(provider, result string) {
				if provider != "env" {
					t.Errorf("OnFetch provider = %q, want env", provider)
				}
				fetches.Add(1)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- c.Run(ctx) }()
		const ref = "$env://TLS_KEY"
		resolve := func() string {
			t.Helper()
			v, err := c.Resolve(ctx, ref)
			if err != nil {
				t.Fatalf("Resolve(%q): %v", ref, err)
			}
			return string(v)
		}
		if got := resolve(); got != "v1" {
			t.Fatalf("Resolve = %q, want v1", got)
		}

		// Rotation in the store: seen at the next refresh, not before.
		env.Set("TLS_KEY", "v2")
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if got := resolve(); got != "v1" || changes.Load() != 0 {
			t.Errorf("before the interval: Resolve = %q, changes = %d, want v1, 0", got, changes.Load())
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := resolve(); got != "v2" || changes.Load() != 1 {
			t.Errorf("after the interval: Resolve = %q, changes = %d, want v2, 1", got, changes.Load())
		}

		// Unchanged value: no OnChange.
		time.Sleep(time.Minute)
		synctest.Wait()
		if changes.Load() != 1 {
			t.Errorf("unchanged refresh: changes = %d, want 1", changes.Load())
		}

		// Outage: the old value keeps being served and Stale says why.
		env.Unset("TLS_KEY")
		before := fetches.Load()
		time.Sleep(time.Minute)
		synctest.Wait()
		// Stale gives the cause; the caller names the reference, once.
		if got, err := resolve(), c.Stale(ref); got != "v2" || err == nil || !strings.Contains(err.Error(), "TLS_KEY is not set") || strings.Contains(err.Error(), ref) {
			t.Errorf("during the outage: Resolve = %q, Stale = %v, want v2 and the cause without the reference %s", got, err, ref)
		}
		if changes.Load() != 2 {
			t.Errorf("turning stale: changes = %d, want 2", changes.Load())
		}
		// Retries back off: 5s, 10s, 20s, 40s (then capped at the 1m
		// interval). The clock is 1s past the last attempt.
		for _, step := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second} {
			n := fetches.Load()
			time.Sleep(step - 2*time.Second)
			synctest.Wait()
			if fetches.Load() != n {
				t.Errorf("retried before the %v backoff", step)
			}
			time.Sleep(2 * time.Second)
			synctest.Wait()
			if fetches.Load() != n+1 {
				t.Errorf("not retried after the %v backoff", step)
			}
		}
		if got := fetches.Load() - before; got != 5 {
			t.Errorf("fetches during the outage = %d, want 5", got)
		}
		if changes.Load() != 2 {
			t.Errorf("staying stale: changes = %d, want 2", changes.Load())
		}

		// Recovery with a new value.
		env.Set("TLS_KEY", "v3")
		time.Sleep(time.Minute)
		synctest.Wait()
		if got, err := resolve(), c.Stale(ref); got != "v3" || err != nil {
			t.Errorf("after recovery: Resolve = %q, Stale = %v, want v3, nil", got, err)
		}
		if changes.Load() != 3 {
			t.Errorf("after recovery: changes = %d, want 3", changes.Load())
		}

		if err := c.Run(ctx); err == nil {
			t.Error("second Run succeeded, want an error")
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
	})
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		n       int
		refresh time.Duration
		want    time.Duration
	}{
		{1, 5 * time.Minute, 5 * time.Second},
		{2, 5 * time.Minute, 10 * time.Second},
		{6, 5 * time.Minute, 160 * time.Second},
		{7, 5 * time.Minute, 5 * time.Minute},
		{100, 5 * time.Minute, 5 * time.Minute},
		{1, 2 * time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		if got := retryBackoff(tt.n, tt.refresh); got != tt.want {
			t.Errorf("retryBackoff(%d, %v) = %v, want %v", tt.n, tt.refresh, got, tt.want)
		}
	}
}

// TestSingleflight: concurrent first resolutions of one reference make one
// request to the store.
func TestSingleflight(t *testing.T) {
	t.Run("env", func(t *testing.T) {
		var calls atomic.Int32
		release := make(chan struct{})
		c, _ := New(Options{Getenv: func(k string) (string, bool) {
			calls.Add(1)
			<-release
			return "slow-value", true
		}})
		results := resolveConcurrently(t, c, "$env://SLOW", 20, func() { close(release) })
		for _, r := range results {
			if r != "slow-value" {
				t.Errorf("Resolve = %q, want slow-value", r)
			}
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("Getenv calls = %d, want 1", n)
		}
	})
	t.Run("vault", func(t *testing.T) {
		d := newVaultDouble(t)
		d.put("secret/tls/shop", map[string]any{"key": "k"})
		d.block = make(chan struct{})
		c, _ := newVaultCache(t, d, map[string]string{"VAULT_TOKEN": "root-token"})
		resolveConcurrently(t, c, "$secret://vault/secret/tls/shop/key", 20, func() { close(d.block) })
		if n := d.count("GET /v1/secret/data/tls/shop"); n != 1 {
			t.Errorf("KV reads = %d, want 1", n)
		}
	})
	t.Run("caller gives up", func(t *testing.T) {
		release := make(chan struct{})
		c, _ := New(Options{Getenv: func(string) (string, bool) { <-release; return "v", true }})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := c.Resolve(ctx, "$env://X"); !errors.Is(err, context.Canceled) {
			t.Errorf("Resolve with a cancelled context = %v, want context.Canceled", err)
		}
		close(release)
		// The shared fetch went on; its result is not lost for the next caller.
		if v, err := c.Resolve(t.Context(), "$env://X"); err != nil || string(v) != "v" {
			t.Errorf("Resolve = %q, %v, want v", v, err)
		}
	})
}

// resolveConcurrently starts n resolutions of ref, calls release once all
// have started, and returns their values.
func resolveConcurrently(tb testing.TB, c *Cache, ref string, n int, release func()) []string {
	tb.Helper()
	var started, wg sync.WaitGroup
	out := make([]string, n)
	errs := make([]error, n)
	started.Add(n)
	for i := range n {
		wg.Go(func() {
			started.Done()
			v, err := c.Resolve(tb.Context(), ref)
			out[i], errs[i] = string(v), err
		})
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond) // let the goroutines reach the flight; a late one finds the cache instead
	release()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			tb.Errorf("Resolve(%q): %v", ref, err)
		}
	}
	return out
}

func TestRedaction(t *testing.T) {
	const value = "SUPER-SECRET-VALUE"
	s := secret(value)
	e := &entry{ref: ref.Reference{Provider: "env"}, value: s}
	for _, f := range []string{"%v", "%s", "%q", "%x", "%X", "%#v", "%+v", "%d"} {
		for name, v := range map[string]any{"secret": s, "entry": e, "entry value": *e} {
			got := fmt.Sprintf(f, v)
			if strings.Contains(got, value) || strings.Contains(got, fmt.Sprintf("%x", value)) || strings.Contains(got, strings.Trim(fmt.Sprint([]byte(value)), "[]")) {
				t.Errorf("Sprintf(%q, %s) = %q, leaks the value", f, name, got)
			}
		}
	}
	cfg := vaultConfig{addr: "https://vault", auth: authAppRole, token: value, roleID: "role", secretID: value}
	vc := &vaultClient{cfg: cfg}
	vc.tok.token = value
	for _, f := range []string{"%v", "%s", "%+v", "%#v", "%x"} {
		for name, v := range map[string]any{"vaultConfig": cfg, "vaultClient": vc} {
			if got := fmt.Sprintf(f, v); strings.Contains(got, value) || strings.Contains(got, fmt.Sprintf("%x", value)) {
				t.Errorf("Sprintf(%q, %s) = %q, leaks the token or secret id", f, name, got)
			}
		}
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "secret", s, "entry", e, "vault", cfg, "client", vc)
	log = slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("x", "secret", s, "entry", e, "vault", cfg, "client", vc)
	if strings.Contains(buf.String(), value) {
		t.Errorf("log output leaks the value: %s", buf.String())
	}
}

// TestNoValueInLogsOrErrors runs resolutions, rotations and failures of
// every provider with a debug logger and checks that no value appears in
// the log or in any error.
func TestNoValueInLogsOrErrors(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	values := []string{"env-secret-1", "env-secret-2", "vault-secret-1", "vault-secret-2", "aws-secret-1", "aws-secret-2", "PRIVATE-KEY-MATERIAL"}
	var buf bytes.Buffer
	var bufMu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		bufMu.Lock()
		defer bufMu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))

	vd := newVaultDouble(t)
	vd.put("secret/tls/shop", map[string]any{"key": "vault-secret-1"})
	vd.put("kv/bad", map[string]any{"key": map[string]any{"x": "PRIVATE-KEY-MATERIAL"}})
	ad := newAWSDouble(t)
	ad.put("tls/shop", `{"key":"aws-secret-1"}`)
	ad.put("tls/raw", "PRIVATE-KEY-MATERIAL not json")
	env := newTestEnv(map[string]string{
		"VAULT_ADDR": vd.srv.URL, "VAULT_TOKEN": "root-token",
		"TLS_KEY": "env-secret-1", "TLS_RAW": "PRIVATE-KEY-MATERIAL{",
	})
	c, err := New(Options{Logger: log, Getenv: env.Getenv, HTTPClient: vd.srv.Client(), AWSConfig: ad.config()})
	if err != nil {
		t.Fatal(err)
	}
	vc := vaultOf(t, c)
	vc.http.RetryWaitMin, vc.http.RetryWaitMax = time.Millisecond, time.Millisecond

	var errs []error
	for _, ref := range []string{
		"$env://TLS_KEY", "$secret://vault/secret/tls/shop/key", "$secret://aws/tls/shop/key",
		"$env://TLS_RAW/key", "$secret://aws/tls/raw/key", "$secret://vault/kv/bad/missing",
		"$secret://aws/tls/shop/missing",
	} {
		_, err := c.Resolve(t.Context(), ref)
		errs = append(errs, err)
	}
	// Rotate everything, then break everything.
	env.Set("TLS_KEY", "env-secret-2")
	vd.put("secret/tls/shop", map[string]any{"key": "vault-secret-2"})
	ad.put("tls/shop", `{"key":"aws-secret-2"}`)
	errs = append(errs, c.Refresh(t.Context()))
	env.Unset("TLS_KEY")
	vd.setSealed(true)
	ad.mu.Lock()
	clear(ad.strings)
	ad.mu.Unlock()
	errs = append(errs, c.Refresh(t.Context()))
	for _, ref := range []string{"$env://TLS_KEY", "$secret://vault/secret/tls/shop/key", "$secret://aws/tls/shop/key"} {
		errs = append(errs, c.Stale(ref))
	}

	var text strings.Builder
	bufMu.Lock()
	text.WriteString(buf.String())
	bufMu.Unlock()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintf(&text, "%v\n%+v\n", err, err)
		}
	}
	fmt.Fprintf(&text, "%v %+v\n", c, c)
	for _, v := range values {
		if strings.Contains(text.String(), v) {
			t.Errorf("logs, errors or the cache's own formatting contain the value %q", v)
		}
	}
	if !strings.Contains(text.String(), "secret value changed") || !strings.Contains(text.String(), "Vault is sealed") {
		t.Errorf("the scan did not cover rotations and failures; output:\n%s", text.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestRetain forgets the references that are not retained: a refresh
// round fetches only the retained ones, and a forgotten reference is
// fetched again when it is resolved again.
func TestRetain(t *testing.T) {
	var mu sync.Mutex
	fetches := 0
	c, err := New(Options{
		Getenv:  mapEnv(map[string]string{"A": "a", "B": "b"}),
		OnFetch: func(string, string) { mu.Lock(); fetches++; mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); n := fetches; fetches = 0; return n }
	for _, ref := range []string{"$env://A", "$env://B"} {
		if _, err := c.Resolve(t.Context(), ref); err != nil {
			t.Fatalf("Resolve(%s) = %v", ref, err)
		}
	}
	count()
	c.Retain([]string{"$env://A"})
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh = %v", err)
	}
	if n := count(); n != 1 {
		t.Errorf("refresh after Retain(A) fetched %d references, want 1", n)
	}
	if v, err := c.Resolve(t.Context(), "$env://B"); err != nil || string(v) != "b" {
		t.Errorf("Resolve(B) after it was forgotten = %q, %v; want it fetched again", v, err)
	}
	if n := count(); n != 1 {
		t.Errorf("Resolve of a forgotten reference fetched %d times, want 1", n)
	}
}

// TestFirstResolutionReadWindow: first resolutions of two fields of one
// secret share one read, but a field resolved long after sees the store as
// it is then, not as the last read saw it.
func TestFirstResolutionReadWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newTestEnv(map[string]string{"TLS": `{"cert":"c1","key":"k1"}`})
		c, err := New(Options{Getenv: env.Getenv})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Resolve(t.Context(), "$env://TLS/cert"); err != nil {
			t.Fatal(err)
		}
		env.Set("TLS", `{"cert":"c2","key":"k2","chain":"ch2"}`)
		if got, _ := c.Resolve(t.Context(), "$env://TLS/key"); string(got) != "k1" {
			t.Errorf("key resolved right after cert = %q, want k1 (the same read)", got)
		}
		time.Sleep(11 * time.Second)
		if got, err := c.Resolve(t.Context(), "$env://TLS/chain"); err != nil || string(got) != "ch2" {
			t.Errorf("a field resolved 11s later = %q, %v, want ch2 (a new read)", got, err)
		}
	})
}
