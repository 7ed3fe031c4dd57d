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
