package secrets

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// memVaultCache returns a Cache talking to d in memory (for synctest
// bubbles), with the daemon's defaults: the Vault CLI's retry waits and a
// 5s attempt timeout.
func memVaultCache(tb testing.TB, d *vaultDouble, env map[string]string, mod func(*Options)) *Cache {
	tb.Helper()
	if _, ok := env["VAULT_ADDR"]; !ok {
		env["VAULT_ADDR"] = "http://vault.test:8200"
	}
	opts := Options{Getenv: mapEnv(env), HTTPClient: &http.Client{Transport: d.transport()}, Refresh: time.Minute}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// putSecrets stores n KV v2 secrets with a cert and a key field and
// returns their 2n references.
func putSecrets(d *vaultDouble, n int) []string {
	var refs []string
	for i := range n {
		p := fmt.Sprintf("secret/tls/e%03d", i)
		d.put(p, map[string]any{"cert": "c", "key": "k"})
		refs = append(refs, "$secret://vault/"+p+"/cert", "$secret://vault/"+p+"/key")
	}
	return refs
}

func countStale(c *Cache, refs []string) int {
	n := 0
	for _, r := range refs {
		if c.Stale(r) != nil {
			n++
		}
	}
	return n
}

// syncLog is a slog text handler's output, safe for concurrent writers.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestOutageVisibleAtOnce is issue 17.1: with 500 secrets (1,000
// references), every reference is reported stale within seconds of the
// store going away, whether it refuses connections or hangs, with one
// Warn naming the store; the round does not try every secret; and the
// references recover on the retry after the store is back.
func TestOutageVisibleAtOnce(t *testing.T) {
	tests := []struct {
		name     string
		outage   func(d *vaultDouble, on bool)
		within   time.Duration
		requests int // at most, during the failing round
	}{
		{"connection refused", (*vaultDouble).setDown, 2 * time.Second, 3 * refreshConcurrency},
		{"hung server", (*vaultDouble).setHang, 10 * time.Second, 3 * refreshConcurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := newMemVaultDouble(t)
				refs := putSecrets(d, outageSecrets)
				var log syncLog
				var changes atomic.Int32
				c := memVaultCache(t, d, map[string]string{"VAULT_TOKEN": "root-token"}, func(o *Options) {
					o.Logger = slog.New(slog.NewTextHandler(&log, nil))
					o.OnChange = func() { changes.Add(1) }
				})
				for _, r := range refs {
					if _, err := c.Resolve(t.Context(), r); err != nil {
						t.Fatal(err)
					}
				}
				d.log()
				// A healthy round: one read per secret, nothing else.
				if err := c.Refresh(t.Context()); err != nil {
					t.Fatal(err)
				}
				if n := len(d.log()); n != outageSecrets {
					t.Errorf("requests of a healthy round = %d, want %d (one per secret)", n, outageSecrets)
				}
				tt.outage(d, true)
				start := time.Now()
				done := make(chan error, 1)
				go func() { done <- c.Refresh(t.Context()) }()
				var elapsed time.Duration
				for countStale(c, refs) < len(refs) {
					time.Sleep(100 * time.Millisecond)
					if elapsed = time.Since(start); elapsed > time.Minute {
						t.Fatalf("after %v only %d of %d references are stale", elapsed, countStale(c, refs), len(refs))
					}
				}
				<-done
				n := len(d.log())
				t.Logf("%s: all %d references stale after %v, %d requests in the round, %d OnChange calls",
					tt.name, len(refs), elapsed, n, changes.Load())
				if elapsed > tt.within {
					t.Errorf("all references stale after %v, want within %v", elapsed, tt.within)
				}
				if n > tt.requests {
					t.Errorf("requests in the failing round = %d, want at most %d (the round stops early)", n, tt.requests)
				}
				if got := strings.Count(log.String(), "secret store unreachable"); got != 1 {
					t.Errorf("%d Warn lines naming the store unreachable, want 1:\n%s", got, log.String())
				}
				if err := c.Stale(refs[len(refs)-1]); err == nil || !strings.Contains(err.Error(), "vault is unreachable") {
					t.Errorf("Stale of a reference not tried = %v, want one naming the store", err)
				}

				// Back: a retry (5s, then 10s backoff; one right after the
				// outage fails at once) finds every secret again.
				tt.outage(d, false)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				go c.Run(ctx)
				time.Sleep(16 * time.Second)
				synctest.Wait()
				if n := countStale(c, refs); n != 0 {
					t.Errorf("%d references still stale after the store came back", n)
				}
			})
		})
	}
}

// outageSecrets is the number of secrets of TestOutageVisibleAtOnce.
var outageSecrets = 500
