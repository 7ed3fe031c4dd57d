package secrets

import (
	"net/http"
	"testing"
	"time"
)

// TestVault exposes the in-process Vault double to the integration tests
// of package secrets_test.
type TestVault struct {
	d      *vaultDouble
	URL    string
	Client *http.Client
}

func NewTestVault(tb testing.TB) *TestVault {
	d := newVaultDouble(tb)
	return &TestVault{d: d, URL: d.srv.URL, Client: d.srv.Client()}
}

func (v *TestVault) Put(path string, fields map[string]any) { v.d.put(path, fields) }
func (v *TestVault) SetSealed(sealed bool)                  { v.d.setSealed(sealed) }

// FastRetries makes c's Vault client retry without the CLI's 1s waits.
func FastRetries(tb testing.TB, c *Cache) {
	tb.Helper()
	vc := vaultOf(tb, c)
	vc.http.RetryWaitMin, vc.http.RetryWaitMax = time.Millisecond, 5*time.Millisecond
}

// Close stops the double's server: connections are refused from then on.
func (v *TestVault) Close() { v.d.srv.Close() }

// SetHang makes every request hang until the client gives up (or SetHang
// false).
func (v *TestVault) SetHang(b bool) { v.d.setHang(b) }

// Deny makes every token's policy refuse the API path (403).
func (v *TestVault) Deny(apiPath string) {
	v.d.mu.Lock()
	defer v.d.mu.Unlock()
	v.d.deny[apiPath] = true
}
